"""Fashion-MNIST through tensorflow-datasets, online or offline from a manual-download folder.

This is the only module that imports TensorFlow, and it hides every GPU from TensorFlow so
that JAX owns the accelerator. The whole train split (60,000 x 28 x 28 x 1 float32, 188 MB)
is returned as one NumPy array: the training loop keeps it on the device and draws batches
inside the jitted step, like the reference's `X_train[randint(0, 60000, 128)]`.

After the first load the decoded uint8 arrays are cached next to the prepared tfds dataset
(`<data_dir>/fashion_mnist/<version>/gan_jax_<split>.npz`), so later runs skip importing
TensorFlow and decoding 60,000 PNGs (about 9 s on 2 cores). Delete the file to rebuild it.

Offline: point `manual_dir` (flag `--manual-dir`, env `GAN_JAX_MANUAL_DIR`) at a folder with
the four original files; tfds checks their SHA-256 sums and prepares the dataset under
`data_dir` (flag `--data-dir`, env `GAN_JAX_DATA_DIR`) without touching the network.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import os
import socket
import sys

import numpy as np

from gan_jax import native_output
from gan_jax.errors import UserError

CLASS_NAMES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
               "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")
"""Fashion-MNIST class names, in label order 0..9."""

FILES = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
         "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")
"""The four original files tfds downloads for `fashion_mnist` (and accepts in a manual dir)."""

_DOWNLOAD_HOST = ("fashion-mnist.s3-website.eu-central-1.amazonaws.com", 80)


@dataclasses.dataclass(frozen=True)
class Dataset:
    """A split of Fashion-MNIST in memory.

    images: float32 (N, 28, 28, 1), values in [-1, 1] (`x / 127.5 - 1`, as the reference).
    labels: int32 (N,), class indices 0..9 into CLASS_NAMES.
    """

    images: np.ndarray
    labels: np.ndarray

    def __len__(self) -> int:
        return int(self.images.shape[0])


def normalize(images_uint8: np.ndarray) -> np.ndarray:
    """uint8 (N, 28, 28[, 1]) in [0, 255] -> float32 (N, 28, 28, 1) in [-1, 1], as the reference."""
    x = images_uint8.astype(np.float64) / 127.5 - 1.0
    if x.ndim == 3:
        x = x[..., None]
    return x.astype(np.float32)


def synthetic_dataset(n: int = 256, seed: int = 0) -> Dataset:
    """A tiny Fashion-MNIST-shaped dataset of random uint8 images (for tests and benches)."""
    rng = np.random.default_rng(seed)
    return Dataset(normalize(rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)),
                   rng.integers(0, 10, size=(n,)).astype(np.int32))


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


def _network_reachable(timeout_s: float = 3.0) -> bool:
    try:
        socket.create_connection(_DOWNLOAD_HOST, timeout=timeout_s).close()
        return True
    except OSError:
        return False


def _offline_message(why: str) -> str:
    return (f"{why}. Put the four Fashion-MNIST files ({', '.join(FILES)}) in a folder and pass it "
            f"with --manual-dir DIR or the environment variable GAN_JAX_MANUAL_DIR=DIR "
            f"(in this project: ../shared/data/fashion_mnist)")


def _cache_paths(split: str, data_dir: str | None) -> list[str]:
    """Where a decoded split may be cached: beside each prepared version of tfds' fashion_mnist."""
    root = data_dir or os.environ.get("TFDS_DATA_DIR") or os.path.expanduser("~/tensorflow_datasets")
    base = os.path.join(root, "fashion_mnist")
    versions = sorted(os.listdir(base), reverse=True) if os.path.isdir(base) else []
    return [os.path.join(base, v, f"gan_jax_{split}.npz") for v in versions
            if os.path.isfile(os.path.join(base, v, "dataset_info.json"))]


def _read_cache(split: str, data_dir: str | None) -> Dataset | None:
    for path in _cache_paths(split, data_dir)[:1]:
        try:
            with np.load(path) as z:
                images, labels = z["image"], z["label"]
            if images.dtype == np.uint8 and images.shape[1:] == (28, 28) and len(labels) == len(images):
                return Dataset(normalize(images), labels.astype(np.int32))
        except (OSError, KeyError, ValueError):
            pass  # unreadable cache: rebuild it from tfds
    return None


def _write_cache(split: str, data_dir: str | None, images: np.ndarray, labels: np.ndarray) -> None:
    for path in _cache_paths(split, data_dir)[:1]:
        try:
            np.savez(path + ".tmp.npz", image=images, label=labels)
            os.replace(path + ".tmp.npz", path)
        except OSError:
            pass  # a read-only data_dir only loses the speed-up


def load_fashion_mnist(split: str = "train", manual_dir: str | None = None,
                       data_dir: str | None = None) -> Dataset:
    """Load a Fashion-MNIST split ('train': 60,000 images; 'test': 10,000) via tfds.

    Prepares the tfds dataset on first use: from `manual_dir` when given (offline, checksums
    verified), else by download. Raises UserError (one line: problem and fix) when the files
    are missing or corrupt, the network is unreachable, or `data_dir` is not writable.
    """
    cached = _read_cache(split, data_dir)
    if cached is not None:
        return cached
    if manual_dir is not None:
        if not os.path.isdir(manual_dir):
            raise UserError(_offline_message(f"manual dir {manual_dir!r} is not a folder"))
    _, tfds = _import_tf()
    from tensorflow_datasets.core.download.download_manager import NonMatchingChecksumError  # noqa: PLC0415

    try:
        builder = tfds.builder("fashion_mnist", data_dir=data_dir)
        if not builder.is_prepared():
            if manual_dir is not None:
                missing = [f for f in FILES if not os.path.isfile(os.path.join(manual_dir, f))]
                if missing:
                    raise UserError(_offline_message(f"manual dir {manual_dir!r} lacks {', '.join(missing)}"))
            elif not _network_reachable():
                raise UserError(_offline_message("Fashion-MNIST is not prepared in the tfds data dir "
                                                 "and the download server cannot be reached"))
            config = tfds.download.DownloadConfig(manual_dir=manual_dir, try_download_gcs=False)
            # tfds prints "Downloading and preparing dataset ..." and "... prepared" on stdout,
            # unconditionally; our one line below says the same, and only once it succeeded (an
            # error stays the only line).
            with contextlib.redirect_stdout(io.StringIO()):
                builder.download_and_prepare(download_config=config)
            source = f"the files in {manual_dir}" if manual_dir is not None else "a download"
            print(f"prepared Fashion-MNIST from {source} into {builder.data_dir} (once; later runs reuse it)",
                  file=sys.stderr)
        arrays = tfds.as_numpy(builder.as_dataset(split=split, batch_size=-1))
    except NonMatchingChecksumError as e:
        bad = next((f for f in FILES if f in str(e)), "a data file")
        raise UserError(f"{bad} in {manual_dir!r} is corrupt (SHA-256 mismatch with what tfds expects); "
                        f"replace it with the original file (check with `sha256sum -c SHA256SUMS`)") from None
    except PermissionError as e:
        raise UserError(f"cannot write the tfds data dir ({e.filename or data_dir}): permission denied; "
                        f"pass a writable --data-dir or set GAN_JAX_DATA_DIR") from None
    images, labels = arrays["image"][..., 0], arrays["label"]
    _write_cache(split, data_dir, images, labels)
    return Dataset(normalize(images), labels.astype(np.int32))
