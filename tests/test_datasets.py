"""Any tfds image-classification dataset, offline: tfds' own `tfds.testing.mock_data` fakes each
dataset's records from its code (shapes, dtypes, class counts), so loading, normalization, class
names, training, sampling and the per-dataset classifier run here without the real files.
(Fashion-MNIST's real files: test_real_data.py.)"""

import dataclasses
import json
import os

import numpy as np
import pytest
import tensorflow_datasets as tfds

from gan_jax import input_pipeline
from gan_jax.config import Config
from gan_jax.errors import UserError
from gan_jax.loop import train_and_evaluate
from gan_jax.metrics import names
from conftest import on_arch

DATASETS = [("fashion_mnist", (28, 28, 1), 10), ("mnist", (28, 28, 1), 10), ("kmnist", (28, 28, 1), 10),
            ("emnist/letters", (28, 28, 1), 37), ("cifar10", (32, 32, 3), 10), ("svhn_cropped", (32, 32, 3), 10)]


def mock(n=64):
    """tfds.testing.mock_data: random records shaped as the dataset's features, no files read."""
    return tfds.testing.mock_data(num_examples=n, policy=tfds.testing.MockPolicy.USE_CODE)


@pytest.fixture(autouse=True)
def mocked_downloads_need_no_network(monkeypatch):
    """Under mock_data "preparing" downloads nothing; gan_jax's offline check must not stop it."""
    monkeypatch.setattr(input_pipeline, "_network_reachable", lambda *a, **k: True)


def tiny(name: str, **changes) -> Config:
    small = dict(iterations=4, batch_size=8, latent_dim=8, g_hidden=(16, 32), d_hidden=(32, 16), sample_every=3,
                 log_every=1, checkpoint_every=4, eval_every=0, progress=False)
    if "arch" in changes:  # the dense widths above are read by --arch dense only
        small = {k: v for k, v in small.items() if k not in ("g_hidden", "d_hidden")}
        return on_arch(Config(), changes.pop("arch"), dataset=name, **{**small, **changes})
    return dataclasses.replace(Config(), dataset=name, **{**small, **changes})


def test_the_tested_datasets_are_the_ones_listed_in_input_pipeline():
    assert {name for name, _, _ in DATASETS} == set(input_pipeline.TESTED_DATASETS)


@pytest.mark.slow
@pytest.mark.parametrize("name, shape, classes", DATASETS)
def test_each_dataset_loads_and_trains(name, shape, classes, tmp_path):
    with mock():
        data = input_pipeline.load(name, "train", data_dir=str(tmp_path / "tfds"))
        names = tuple(tfds.builder(name).info.features["label"].names)
    assert data.images.shape == (64, *shape) and data.images.dtype == np.uint8
    assert data.labels.dtype == np.int32 and 0 <= data.labels.min() and data.labels.max() < classes
    assert data.class_names == names and len(names) == classes and data.name == name
    x = data.normalized()
    assert x.dtype == np.float32 and x.shape == data.images.shape and -1 <= x.min() and x.max() <= 1
    assert np.array_equal(x, (data.images.astype(np.float64) / 127.5 - 1).astype(np.float32))

    workdir = tmp_path / "run"
    with mock():
        state = train_and_evaluate(tiny(name), str(workdir))
    assert int(state.step) == 4
    stored = json.load(open(workdir / "config.json"))
    assert stored["dataset"] == name and stored["image_shape"] == list(shape) and tuple(stored["class_names"]) == names
    records = [json.loads(line) for line in open(workdir / "metrics.jsonl")]
    assert [r["iteration"] for r in records] == [0, 1, 2, 3] and all(np.isfinite(r["g_loss"]) for r in records)
    assert (workdir / "final.png").exists() and (workdir / "dataset_preview.png").exists()


@pytest.mark.slow
def test_dcgan_on_colour_32x32_and_sampling_it(tmp_path, capsys):
    from gan_jax.checkpoints import load_run
    from gan_jax.sample import main as sample_main

    workdir = tmp_path / "run"
    with mock():
        train_and_evaluate(tiny("cifar10", arch="dcgan", d_norm="batch"), str(workdir))
    config, step, state = load_run(str(workdir))
    assert config.image_shape == (32, 32, 3) and step == 4
    assert state.g.params["ConvTranspose4x4s2_1"]["kernel"].shape == (4, 4, 64, 3)  # RGB out
    out = tmp_path / "grid.png"
    assert sample_main(["--workdir", str(workdir), "--n", "4", "--out", str(out), "--npz", str(tmp_path / "s.npz")]) == 0
    assert out.exists() and np.load(tmp_path / "s.npz")["arr_0"].shape == (4, 32, 32, 3)


def test_dcgan_refuses_sizes_it_cannot_make(tmp_path):
    odd = input_pipeline.synthetic_dataset(32, image_shape=(30, 30, 1))
    with pytest.raises(UserError, match=r"--arch dcgan makes images whose height and width are multiples of 4 .* "
                                        r"30 x 30: use --arch dense"):
        train_and_evaluate(tiny("synthetic", arch="dcgan"), str(tmp_path / "run"), dataset=odd)
    assert not (tmp_path / "run" / "config.json").exists()


@pytest.mark.slow
def test_resuming_on_a_dataset_of_another_shape_is_refused(tmp_path):
    workdir = str(tmp_path / "run")
    with mock():
        train_and_evaluate(tiny("mnist"), workdir)
        with pytest.raises(UserError, match=r"cannot resume: .*image_shape \(28, 28, 1\) -> \(32, 32, 3\)"):
            train_and_evaluate(tiny("cifar10", iterations=8), workdir, resume=True)


def test_unknown_non_image_and_unreachable_datasets_are_one_line_errors(tmp_path, monkeypatch):
    data_dir = str(tmp_path / "tfds")
    with pytest.raises(UserError, match=r"unknown tfds dataset 'not_a_dataset' .*e\.g\. fashion_mnist, mnist"):
        input_pipeline.load("not_a_dataset", data_dir=data_dir)
    with pytest.raises(UserError, match=r"imdb_reviews is not an image-classification dataset .*it has label, text"):
        input_pipeline.load("imdb_reviews", data_dir=data_dir)
    monkeypatch.setattr(input_pipeline, "_network_reachable", lambda *a, **k: False)  # offline, even where online
    with pytest.raises(UserError, match=r"cifar10 is not prepared .*--manual-dir '.*' lacks cifar-10-binary\.tar\.gz, "
                                        r"and there is no network"):
        input_pipeline.load("cifar10", manual_dir=str(tmp_path), data_dir=data_dir)
    with pytest.raises(UserError, match=r"mnist is not prepared .*no --manual-dir.*put t10k-images-idx3-ubyte\.gz"):
        input_pipeline.load("mnist", data_dir=data_dir)


@pytest.mark.slow
def test_a_classifier_per_dataset(tmp_path, capsys):
    """No classifier yet: training says evaluation is off, evaluate refuses in one line. Then
    train_classifier --dataset makes one where both find it, and a run is scored with it."""
    from gan_jax.evaluate import main as evaluate_main
    from gan_jax.metrics import classifier
    from gan_jax.metrics.train_classifier import main as train_classifier_main

    data_dir = str(tmp_path / "tfds")
    workdir = str(tmp_path / "run")
    with mock():
        train_and_evaluate(tiny("mnist", eval_every=2, eval_samples=16, data_dir=data_dir), workdir)
    err = capsys.readouterr().err
    assert "evaluation off: no metrics classifier for mnist yet" in err
    assert "make one with `python -m gan_jax.metrics.train_classifier --dataset mnist`" in err
    assert not any(names.base(k) == "fid" for line in open(os.path.join(workdir, "metrics.jsonl"))
                   for k in json.loads(line))
    with mock(), pytest.raises(UserError, match="no metrics classifier for mnist .*--dataset mnist"):
        evaluate_main(["--workdir", workdir, "--n", "16", "--data-dir", data_dir])

    with mock():
        assert train_classifier_main(["--dataset", "mnist", "--epochs", "1", "--batch-size", "32",
                                      "--data-dir", data_dir]) == 0
    folder = classifier.weights_dir("mnist", data_dir)
    assert folder == os.path.join(data_dir, "mnist", "gan_jax_classifier")
    record = classifier.info(folder)
    assert record["num_classes"] == 10 and record["image_shape"] == [28, 28, 1] and record["flip"] is False
    assert classifier.find("mnist", data_dir)["params"]["Dense_1"]["bias"].shape == (10,)
    assert classifier.find("kmnist", data_dir) is None
    with mock():
        assert evaluate_main(["--workdir", workdir, "--n", "16", "--data-dir", data_dir]) == 0
    result = json.load(open(os.path.join(workdir, "eval.json")))
    assert result["dataset"] == "mnist" and np.isfinite(result["fid_16"])
    assert set(result["class_histogram_16"]) == {str(i) for i in range(10)}  # tfds' names for mnist


@pytest.mark.slow
def test_a_dataset_over_the_device_budget_streams(tmp_path, capsys):
    """--device-data-mb 0: the batches come from tf.data (mock records here), the same step trains."""
    workdir = tmp_path / "run"
    with mock():
        state = train_and_evaluate(tiny("cifar10", device_data_mb=0, d_steps=2), str(workdir))
    assert int(state.step) == 4
    assert "streaming cifar10 from tfds (over --device-data-mb 0)" in capsys.readouterr().err
    records = [json.loads(line) for line in open(workdir / "metrics.jsonl")]
    assert len(records) == 4 and all(np.isfinite(r["d_loss"]) for r in records)


@pytest.mark.slow
def test_streamed_batches_carry_their_labels(tmp_path):
    """The stream yields (images, labels) with each image's own label, and a conditional run trains on it."""
    with mock():
        images, labels = next(input_pipeline.stream("mnist", "train", 8, seed=0, data_dir=str(tmp_path / "tfds")))
        data = input_pipeline.load("mnist", "train", data_dir=str(tmp_path / "tfds"))
        state = train_and_evaluate(tiny("cifar10", device_data_mb=0, condition="acgan", d_steps=2),
                                   str(tmp_path / "run"))
    assert images.shape == (8, 28, 28, 1) and labels.shape == (8,) and labels.dtype == np.int32
    for image, label in zip(images, labels):  # find each streamed image in the split: same label
        match = np.flatnonzero((data.images == image).all(axis=(1, 2, 3)))
        assert len(match) >= 1 and label in data.labels[match]
    assert int(state.step) == 4


def test_a_decoded_cache_damaged_in_place_is_not_read_and_says_so_once(tmp_path, capsys):
    """A cache with zeros written over its middle (the same size: the zip's CRC fails, numpy raises
    zipfile.BadZipFile) or truncated is treated as absent (load then rebuilds it from tfds), with one warning."""
    version = tmp_path / "fashion_mnist" / "3.0.1"
    version.mkdir(parents=True)
    (version / "dataset_info.json").write_text(json.dumps({"splits": [{"name": "train", "shardLengths": ["256"]}]}))
    whole = input_pipeline.synthetic_dataset(256)
    path = version / "gan_jax_train.npz"
    for damage in ("zeros", "truncated"):
        np.savez(path, image=whole.images, label=whole.labels, class_names=np.array(whole.class_names))
        assert input_pipeline._read_cache("fashion_mnist", "train", str(tmp_path)) is not None
        data = bytearray(path.read_bytes())
        data = data[:len(data) // 2] if damage == "truncated" else \
            data[:len(data) // 2] + bytes(4096) + data[len(data) // 2 + 4096:]
        path.write_bytes(bytes(data))
        capsys.readouterr()
        assert input_pipeline._read_cache("fashion_mnist", "train", str(tmp_path)) is None
        err = capsys.readouterr().err.splitlines()
        assert len(err) == 1 and "unreadable" in err[0] and "rebuilding it from tfds" in err[0], (damage, err)


def test_a_decoded_cache_is_used_only_when_it_holds_the_whole_split(tmp_path):
    """The uint8 cache beside a prepared dataset is read only when it has as many images as tfds'
    dataset_info.json records for the split: a partial one (e.g. 64 images written under
    tfds.testing.mock_data into the default data dir) is ignored, and the split rebuilt."""
    version = tmp_path / "fashion_mnist" / "3.0.1"
    version.mkdir(parents=True)
    (version / "dataset_info.json").write_text(json.dumps(
        {"splits": [{"name": "train", "shardLengths": ["40", "24"]}, {"name": "test", "shardLengths": ["10"]}]}))
    whole = input_pipeline.synthetic_dataset(64)
    for n, usable in ((64, True), (63, False)):
        np.savez(version / "gan_jax_train.npz", image=whole.images[:n], label=whole.labels[:n],
                 class_names=np.array(whole.class_names))
        cached = input_pipeline._read_cache("fashion_mnist", "train", str(tmp_path))
        assert (cached is not None) == usable
        if usable:
            assert np.array_equal(cached.images, whole.images) and np.array_equal(cached.labels, whole.labels)
