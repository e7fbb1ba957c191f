"""Image datasets through tensorflow-datasets, online or offline from a manual-download folder.

Any tfds image-classification dataset (features 'image' and 'label'; a name or name/config):
fashion_mnist (the reference), mnist, kmnist, emnist/letters, cifar10, svhn_cropped, ... `load`
returns a whole split as uint8 arrays (60,000 Fashion-MNIST images: 47 MB, a quarter of float32);
the training loop keeps them on the device and normalizes the drawn batch inside the jitted step
through `NORMALIZE_TABLE`, bitwise the reference's `x / 127.5 - 1`.

This is the only module that imports TensorFlow, and it hides every GPU from TensorFlow so
that JAX owns the accelerator. After the first load the decoded arrays are cached next to the
prepared tfds dataset (`<data_dir>/<name>/<version>/gan_jax_<split>.npz`), so later runs skip
importing TensorFlow and decoding the images (about 9 s for Fashion-MNIST on 2 cores).

Offline: point `manual_dir` (flag `--manual-dir`, env `GAN_JAX_MANUAL_DIR`) at a folder with the
files tfds downloads for the dataset, under their original names (Fashion-MNIST: the four .gz
files); tfds checks their checksums and prepares the dataset under `data_dir` (flag
`--data-dir`, env `GAN_JAX_DATA_DIR`) without the network.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import os
import socket
import sys
import zipfile
import zlib
from collections.abc import Iterator

import filelock
import numpy as np

from gan_jax import files, native_output
from gan_jax.config import FASHION_MNIST_CLASSES
from gan_jax.errors import UserError


TESTED_DATASETS = ("fashion_mnist", "mnist", "kmnist", "emnist/letters", "cifar10", "svhn_cropped")
"""The tfds datasets the tests train on (through tfds.testing.mock_data, Fashion-MNIST for real)."""

FILES = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
         "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")
"""The four original files tfds downloads for `fashion_mnist` (and accepts in a manual dir)."""

_DOWNLOAD_HOST = ("fashion-mnist.s3-website.eu-central-1.amazonaws.com", 80)
_NETWORK_PROBE = ("storage.googleapis.com", 443)
"""Probed before downloading any other dataset (tfds' own mirror); without it tfds would retry
each file for about 100 s before failing."""


def normalize(images_uint8: np.ndarray) -> np.ndarray:
    """uint8 (..., H, W[, C]) in [0, 255] -> float32 in [-1, 1] as the reference (`x / 127.5 - 1`,
    in float64, rounded once); a missing channel axis (N, H, W) gains one: (N, H, W, 1)."""
    x = images_uint8.astype(np.float64) / 127.5 - 1.0
    if x.ndim == 3:
        x = x[..., None]
    return x.astype(np.float32)


NORMALIZE_TABLE = normalize(np.arange(256, dtype=np.uint8)[:, None, None])[:, 0, 0, 0]
"""float32 (256,): entry v is `normalize` of the pixel value v. `NORMALIZE_TABLE[images]` is
bitwise `normalize(images)`; the train step indexes it on the device."""


@dataclasses.dataclass(frozen=True)
class Dataset:
    """A split of an image-classification dataset in memory.

    images: uint8 (N, H, W, C) in [0, 255]. labels: int32 (N,), class indices into class_names.
    class_names: one name per class (tfds' metadata). name: the tfds name it came from.
    """

    images: np.ndarray
    labels: np.ndarray
    class_names: tuple[str, ...] = FASHION_MNIST_CLASSES
    name: str = "fashion_mnist"

    def __len__(self) -> int:
        return int(self.images.shape[0])

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """(H, W, C) of one image."""
        return tuple(int(d) for d in self.images.shape[1:])  # type: ignore[return-value]

    def normalized(self, index: np.ndarray | slice | None = None) -> np.ndarray:
        """The images (or images[index]) as float32 in [-1, 1], as the networks see them."""
        return NORMALIZE_TABLE[self.images if index is None else self.images[index]]


def synthetic_dataset(n: int = 256, seed: int = 0, image_shape: tuple[int, int, int] = (28, 28, 1),
                      num_classes: int = 10) -> Dataset:
    """A tiny dataset of random uint8 images (Fashion-MNIST's shape by default; tests, benches)."""
    rng = np.random.default_rng(seed)
    names = FASHION_MNIST_CLASSES if num_classes == 10 else tuple(f"class {i}" for i in range(num_classes))
    return Dataset(rng.integers(0, 256, size=(n, *image_shape), dtype=np.uint8),
                   rng.integers(0, num_classes, size=(n,)).astype(np.int32), names, "synthetic")


def _import_tf():
    """Import TensorFlow and tfds silently, with every GPU hidden from TensorFlow.

    TensorFlow >= 2.16 logs through absl's C++ logging, which writes to file descriptor 2 while
    being imported, before any log level applies: absl's "All log messages before
    absl::InitializeLog() ..." notice and, on CPUs where TensorFlow turns its oneDNN path on
    (AVX-512 / AMX Xeons, or TF_ENABLE_ONEDNN_OPTS=1), the "oneDNN custom operations are on"
    banner. No environment variable turns these off (TF_CPP_MIN_LOG_LEVEL does not), so the
    import runs with descriptor 2 pointed at a scratch file; if the import fails, what it wrote
    is replayed before the exception propagates. TF_CPP_MIN_LOG_LEVEL=2 then keeps TensorFlow's
    later C++ INFO/WARNING lines (e.g. cpu_feature_guard) off the console.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    with native_output.captured((2,)):
        import tensorflow as tf  # noqa: PLC0415  (deliberately lazy: only this module needs TF)

        tf.config.set_visible_devices([], "GPU")
        import tensorflow_datasets as tfds  # noqa: PLC0415
    from absl import logging as absl_logging  # noqa: PLC0415

    absl_logging.set_verbosity(absl_logging.ERROR)
    tfds.disable_progress_bar()
    return tf, tfds


def _network_reachable(host: tuple[str, int] = _DOWNLOAD_HOST, timeout_s: float = 3.0) -> bool:
    try:
        socket.create_connection(host, timeout=timeout_s).close()
        return True
    except OSError:
        return False


def _offline_message(why: str) -> str:
    return (f"{why}. Put the four Fashion-MNIST files ({', '.join(FILES)}) in a folder and pass it "
            f"with --manual-dir DIR or the environment variable GAN_JAX_MANUAL_DIR=DIR "
            f"(in this project: ../shared/data/fashion_mnist)")


def data_root(data_dir: str | None) -> str:
    """tfds' data_dir: the one given, else $TFDS_DATA_DIR, else ~/tensorflow_datasets."""
    return data_dir or os.environ.get("TFDS_DATA_DIR") or os.path.expanduser("~/tensorflow_datasets")


def _cache_paths(name: str, split: str, data_dir: str | None) -> list[str]:
    """Where a decoded split may be cached: beside each prepared version of the tfds dataset, newest first."""
    base = os.path.join(data_root(data_dir), name)
    versions = sorted(os.listdir(base), reverse=True) if os.path.isdir(base) else []
    return [os.path.join(base, v, f"gan_jax_{split}.npz") for v in versions
            if os.path.isfile(os.path.join(base, v, "dataset_info.json"))]


def _read_cache(name: str, split: str, data_dir: str | None) -> Dataset | None:
    """The cached split, if it is whole: uint8 images, one label each, as many as the prepared tfds
    dataset's dataset_info.json says the split has (a cache written from anything else, e.g. under
    tfds.testing.mock_data, is rebuilt)."""
    for path in _cache_paths(name, split, data_dir)[:1]:
        if not os.path.exists(path):
            continue
        try:
            with np.load(path) as z:
                images, labels = z["image"], z["label"]
                names = tuple(str(c) for c in z["class_names"])
            if images.dtype == np.uint8 and images.ndim == 4 and len(labels) == len(images) and names and \
                    len(images) == _split_size(os.path.dirname(path), split):
                return Dataset(images, labels.astype(np.int32), names, name)
        except (OSError, KeyError, ValueError, EOFError, zipfile.BadZipFile, zlib.error) as e:
            # damaged (a bad CRC, truncated, zeros written over it): rebuilt from tfds and rewritten by `load`
            print(f"warning: the decoded-data cache {path} is unreadable ({type(e).__name__}: "
                  f"{str(e).splitlines()[0][:120] if str(e) else ''}); rebuilding it from tfds", file=sys.stderr)
    return None


def _split_size(version_dir: str, split: str) -> int | None:
    """Examples in `split` per the prepared dataset's dataset_info.json (tfds' record); None if unknown."""
    try:
        with open(os.path.join(version_dir, "dataset_info.json")) as f:
            splits = json.load(f).get("splits", [])
        return next(sum(int(n) for n in s["shardLengths"]) for s in splits if s.get("name") == split)
    except (OSError, ValueError, KeyError, TypeError, StopIteration):
        return None


def _write_cache(dataset: Dataset, split: str, data_dir: str | None) -> None:
    for path in _cache_paths(dataset.name, split, data_dir)[:1]:
        try:
            with files.replaced_whole(path) as tmp:
                np.savez(tmp, image=dataset.images, label=dataset.labels, class_names=np.array(dataset.class_names))
        except OSError:
            pass  # a read-only data_dir only loses the speed-up


def load(name: str = "fashion_mnist", split: str = "train", manual_dir: str | None = None,
         data_dir: str | None = None, limit: int | None = None) -> Dataset:
    """Load a split ('train', 'test', ...) of the tfds image-classification dataset `name`
    (with `limit`: only its first `limit` examples, in tfds' order).

    Prepares the tfds dataset on first use: from `manual_dir` when given (offline, checksums
    verified), else by download; processes started side by side on an unprepared data_dir prepare
    it once (the first to lock it; the others wait and read it). Raises UserError (one line: problem and fix) for an unknown
    name, a dataset without 'image' and 'label' features or without `split`, files missing or
    corrupt, no network, or a data_dir that is not writable.
    """
    cached = _read_cache(name, split, data_dir)
    if cached is not None:
        return cached if limit is None else dataclasses.replace(cached, images=cached.images[:limit],
                                                                labels=cached.labels[:limit])
    tfds, builder = _prepared(name, split, manual_dir, data_dir)
    dataset = _read_split(tfds, builder, name, split, limit)
    if limit is None:
        _write_cache(dataset, split, data_dir)
    return dataset


def split_bytes(name: str, split: str = "train", manual_dir: str | None = None,
                data_dir: str | None = None) -> int | None:
    """Size in bytes of the split's images as uint8 (preparing the dataset if needed); None
    when tfds does not know the number of examples. Reads only the cache's header when there is one."""
    for path in _cache_paths(name, split, data_dir)[:1]:
        try:
            with np.load(path) as z, z.zip.open("image.npy") as f:
                version = np.lib.format.read_magic(f)
                read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else \
                    np.lib.format.read_array_header_2_0
                shape, _, dtype = read_header(f)
            return int(np.prod(shape)) * np.dtype(dtype).itemsize
        except (OSError, KeyError, ValueError, EOFError, zipfile.BadZipFile, zlib.error):
            pass  # no readable cache: ask tfds
    _, builder = _prepared(name, split, manual_dir, data_dir)
    if split not in builder.info.splits:
        return None
    return int(builder.info.splits[split].num_examples) * int(np.prod(builder.info.features["image"].shape))


def stream(name: str, split: str, batch_size: int, seed: int, skip: int = 0, manual_dir: str | None = None,
           data_dir: str | None = None) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Endless (uint8 images (batch_size, H, W, C), int32 labels (batch_size,)) of the split through
    tf.data: shuffled (a SHUFFLE_BUFFER-example buffer, seeded, reshuffled every pass), repeated,
    prefetched; the first `skip` batches dropped, so a resumed run continues the same sequence."""
    tfds, builder = _prepared(name, split, manual_dir, data_dir)
    tf, _ = _import_tf()
    # No tfds auto-cache: an endless stream never finishes reading it (TensorFlow warns at exit).
    read_config = tfds.ReadConfig(try_autocache=False)
    ds = builder.as_dataset(split=split, shuffle_files=False, read_config=read_config)
    ds = ds.map(lambda example: (example["image"], tf.cast(example["label"], tf.int32)))
    ds = ds.shuffle(SHUFFLE_BUFFER, seed=seed, reshuffle_each_iteration=True).repeat()
    ds = ds.batch(batch_size, drop_remainder=True).skip(skip).prefetch(2)
    return iter(tfds.as_numpy(ds))


SHUFFLE_BUFFER = 10_000
"""Examples in stream's shuffle buffer."""


def _prepared(name: str, split: str, manual_dir: str | None, data_dir: str | None):
    """(tfds, builder) of `name`, prepared, with `split` checked."""
    if manual_dir is not None and not os.path.isdir(manual_dir):
        raise UserError(_offline_message(f"manual dir {manual_dir!r} is not a folder") if name == "fashion_mnist"
                        else f"manual dir {manual_dir!r} is not a folder; pass the folder holding {name}'s files")
    _, tfds = _import_tf()
    builder = _builder(tfds, name, data_dir)
    if not builder.is_prepared():
        with _preparing(name, data_dir):  # runs started side by side: one prepares, the others wait and read it
            builder = _builder(tfds, name, data_dir)
            if not builder.is_prepared():
                _prepare(tfds, builder, name, manual_dir, data_dir)
    if builder.info.splits and split not in builder.info.splits:
        raise UserError(f"{name} has no split {split!r}; it has {', '.join(sorted(builder.info.splits))}")
    return tfds, builder


def _preparing(name: str, data_dir: str | None) -> contextlib.AbstractContextManager:
    """An exclusive lock on preparing `name` in the tfds data dir (filelock: flock, released when its process
    ends); no lock where the data dir cannot be written (_prepare then says so)."""
    root = data_root(data_dir)
    try:
        os.makedirs(root, exist_ok=True)
        path = os.path.join(root, f".gan_jax_prepare_{name.replace('/', '_')}.lock")
        open(path, "a").close()
    except OSError:
        return contextlib.nullcontext()
    return filelock.FileLock(path, thread_local=False)


def _builder(tfds, name: str, data_dir: str | None):
    """tfds' builder for `name`, checked to be an image-classification dataset."""
    try:
        builder = tfds.builder(name, data_dir=data_dir)
    except Exception as e:  # noqa: BLE001  (DatasetNotFoundError, a bad config name, ...)
        first = str(e).strip().splitlines()[0][:200] if str(e).strip() else type(e).__name__
        raise UserError(f"unknown tfds dataset {name!r} ({first}); pass a tfds image-classification dataset, "
                        f"e.g. {', '.join(TESTED_DATASETS)}") from None
    features = builder.info.features
    image = features["image"] if "image" in features else None
    label = features["label"] if "label" in features else None
    if image is None or label is None or len(getattr(image, "shape", ())) != 3 or not hasattr(label, "names"):
        raise UserError(f"{name} is not an image-classification dataset (gan_jax needs an 'image' feature of "
                        f"shape (H, W, C) and a class 'label'; it has {', '.join(sorted(features))}); "
                        f"pass e.g. {', '.join(TESTED_DATASETS)}")
    if image.shape[0] is None or image.shape[1] is None:
        raise UserError(f"{name}'s images have no fixed size ({image.shape}); gan_jax needs one H x W x C")
    return builder


def _prepare(tfds, builder, name: str, manual_dir: str | None, data_dir: str | None) -> None:
    """Download (or read from manual_dir) and prepare the dataset, with one line of our own."""
    from tensorflow_datasets.core.download.download_manager import NonMatchingChecksumError  # noqa: PLC0415

    # The files tfds downloads for the dataset (its registered checksums), which a manual dir must hold.
    files = FILES if name == "fashion_mnist" else sorted(
        {info.filename or url.rsplit("/", 1)[-1] for url, info in (builder.url_infos or {}).items()})
    missing = [f for f in files if manual_dir is None or not os.path.isfile(os.path.join(manual_dir, f))]
    if missing and not _network_reachable(_DOWNLOAD_HOST if name == "fashion_mnist" else _NETWORK_PROBE):
        if name == "fashion_mnist":
            raise UserError(_offline_message(f"manual dir {manual_dir!r} lacks {', '.join(missing)}" if manual_dir
                                             else "Fashion-MNIST is not prepared in the tfds data dir "
                                                  "and the download server cannot be reached"))
        lacking = f"--manual-dir {manual_dir!r} lacks {', '.join(missing)}" if manual_dir else "no --manual-dir"
        raise UserError(f"{name} is not prepared in the tfds data dir {data_root(data_dir)!r}, {lacking}, and there "
                        f"is no network to download it; put {', '.join(files) or 'its files'} (the files tfds "
                        f"downloads for {name}) in a folder and pass --manual-dir, or prepare it where there is "
                        f"network (`tfds build {name} --data_dir DIR`) and pass --data-dir DIR")
    config = tfds.download.DownloadConfig(manual_dir=manual_dir, try_download_gcs=False)
    try:
        # tfds prints "Downloading and preparing dataset ..." and "... prepared" on stdout,
        # unconditionally; our one line below says the same, and only once it succeeded (an
        # error stays the only line).
        with contextlib.redirect_stdout(io.StringIO()), _socket_timeout(20.0):
            builder.download_and_prepare(download_config=config)
    except NonMatchingChecksumError as e:
        bad = next((f for f in FILES if f in str(e)), "a data file")
        raise UserError(f"{bad} in {manual_dir!r} is corrupt (SHA-256 mismatch with what tfds expects); "
                        f"replace it with the original file (check with `sha256sum -c SHA256SUMS`)") from None
    except PermissionError as e:
        raise UserError(f"cannot write the tfds data dir ({e.filename or data_dir}): permission denied; "
                        f"pass a writable --data-dir or set GAN_JAX_DATA_DIR") from None
    except UserError:
        raise
    except Exception as e:  # noqa: BLE001  (no network, a missing manual file, ...: tfds' many error types)
        first = str(e).strip().splitlines()[0][:300] if str(e).strip() else type(e).__name__
        where = f"the files in {manual_dir}" if manual_dir is not None else "a download"
        raise UserError(f"could not prepare {name} from {where} ({type(e).__name__}: {first}); put the files tfds "
                        f"downloads for {name} in a folder and pass --manual-dir, or prepare it where there is "
                        f"network (`tfds build {name} --data_dir DIR`) and pass --data-dir DIR") from None
    source = f"the files in {manual_dir}" if manual_dir is not None else "a download"
    print(f"prepared {name} from {source} into {builder.data_dir} (once; later runs reuse it)", file=sys.stderr)


@contextlib.contextmanager
def _socket_timeout(seconds: float):
    """A default socket timeout for the block, so that a download without network fails instead of hanging."""
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(seconds)
    try:
        yield
    finally:
        socket.setdefaulttimeout(previous)


def _read_split(tfds, builder, name: str, split: str, limit: int | None = None) -> Dataset:
    """Decode every example of `split` (or the first `limit`) into uint8 (N, H, W, C) images and int32 labels."""
    images, labels = [], []
    ds = builder.as_dataset(split=split, shuffle_files=False, read_config=tfds.ReadConfig(try_autocache=False))
    for batch in tfds.as_numpy((ds if limit is None else ds.take(limit)).batch(10_000)):
        images.append(batch["image"])
        labels.append(batch["label"])
    return Dataset(np.concatenate(images).astype(np.uint8), np.concatenate(labels).astype(np.int32),
                   tuple(builder.info.features["label"].names), name)
