"""Class-conditional generation: labels through the data path and the step, the three
conditionings' formulas, cgan.py's networks, class grids, --class, the obedience scores, resume."""

import dataclasses
import json
import os

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from conftest import assert_one_line_error, on_arch, run_module
from gan_jax import config as config_lib
from gan_jax import presets
from gan_jax import chunk, evaluate, input_pipeline, loop, models, sample
from gan_jax.models import dense
from gan_jax.checkpoints import load_run
from gan_jax.errors import UserError
from gan_jax.losses import class_cross_entropy
from gan_jax.metrics import scores
from gan_jax.metrics.reference import Reference
from gan_jax.sampling import balanced_labels, class_grid_labels, class_index, make_sampler
from gan_jax.build import create_train_state, make_train_step
from gan_jax.metrics import names


def _params(module, *args, **kwargs):
    return module.init(jax.random.PRNGKey(0), *args, **kwargs)


def test_labels_are_gathered_with_the_images_indices():
    """draw_batch: each drawn image's label is its own (the pixels encode the index)."""
    n = 200
    images = np.zeros((n, 2, 2, 1), np.uint8)
    images[:, 0, 0, 0] = np.arange(n)  # pixel value = index
    labels = (np.arange(n) * 7 % 10).astype(np.int32)
    real, drawn = chunk.draw_batch(jnp.asarray(images), jnp.asarray(labels), jax.random.PRNGKey(3), 64)
    idx = np.rint((np.asarray(real)[:, 0, 0, 0] + 1) * 127.5).astype(int)
    assert len(set(idx)) > 20
    np.testing.assert_array_equal(np.asarray(drawn), labels[idx])


@pytest.mark.slow
def test_concat_multiplies_noise_and_image_by_label_embeddings():
    """cgan.py: G(z, y) = net(z * E_g[y]); D(x, y) = net(flatten(x) * E_d[y]); Keras' U(-0.05, 0.05)."""
    g = dense.Generator(hidden=(8,), condition="concat", num_classes=3, image_shape=(2, 2, 1))
    z, y = jax.random.normal(jax.random.PRNGKey(1), (4, 5)), jnp.array([0, 1, 2, 1])
    gv = _params(g, z, train=False, labels=y)
    emb = gv["params"]["Embed_0"]["embedding"]
    assert emb.shape == (3, 5) and float(jnp.max(jnp.abs(emb))) <= 0.05
    plain = dense.Generator(hidden=(8,), image_shape=(2, 2, 1))
    plain_vars = {"params": {k: v for k, v in gv["params"].items() if k != "Embed_0"},
                  "batch_stats": gv["batch_stats"]}
    np.testing.assert_allclose(g.apply(gv, z, train=False, labels=y),
                               plain.apply(plain_vars, z * emb[y], train=False), rtol=1e-6, atol=1e-7)

    d = dense.Discriminator(hidden=(6,), condition="concat", num_classes=3)
    x = jax.random.uniform(jax.random.PRNGKey(2), (4, 2, 2, 1), minval=-1, maxval=1)
    dv = _params(d, x, labels=y)
    emb_d = dv["params"]["Embed_0"]["embedding"]
    assert emb_d.shape == (3, 4)
    plain_d = {"params": {k: v for k, v in dv["params"].items() if k != "Embed_0"}}
    np.testing.assert_allclose(d.apply(dv, x, labels=y),
                               dense.Discriminator(hidden=(6,)).apply(plain_d, (x.reshape(4, -1) * emb_d[y])),
                               rtol=1e-6, atol=1e-7)


def test_projection_discriminator_formula():
    """D(x, y) = w . phi(x) + b + <E[y], phi(x)>, phi(x) = leaky_relu(W0 flatten(x) + b0)."""
    d = dense.Discriminator(hidden=(6,), condition="projection", num_classes=4)
    x = jax.random.uniform(jax.random.PRNGKey(2), (5, 3, 3, 1), minval=-1, maxval=1)
    y = jnp.array([0, 3, 1, 2, 3])
    p = _params(d, x, labels=y)["params"]
    phi = nn.leaky_relu(x.reshape(5, -1) @ p["Dense_0"]["kernel"] + p["Dense_0"]["bias"], 0.2)
    expected = (phi @ p["Dense_1"]["kernel"])[:, 0] + p["Dense_1"]["bias"][0] + jnp.sum(p["Embed_0"]["embedding"][y] * phi, 1)
    np.testing.assert_allclose(d.apply({"params": p}, x, labels=y), expected, rtol=1e-5, atol=1e-6)


@pytest.mark.slow
def test_projection_generator_has_conditional_batch_norm():
    """Per-class gain (init 1) and bias (init 0) after a BatchNorm without its own; with the
    gains and biases of class c set, the output is BatchNorm's normalised x * gamma_c + beta_c."""
    g = dense.Generator(hidden=(4,), condition="projection", num_classes=3, image_shape=(1, 1, 2))
    z = jax.random.normal(jax.random.PRNGKey(1), (6, 5))
    y = jnp.array([0, 1, 2, 0, 1, 2])
    v = _params(g, z, train=False, labels=y)
    assert "BatchNorm_0" not in v["params"]  # no gain or bias of its own
    gamma, beta = v["params"]["Embed_0"]["embedding"], v["params"]["Embed_1"]["embedding"]
    np.testing.assert_array_equal(gamma, np.ones((3, 4)))
    np.testing.assert_array_equal(beta, np.zeros((3, 4)))
    # Class 2's gain doubled and bias +1: only its samples change, and exactly so in the hidden layer.
    params = jax.tree_util.tree_map(lambda a: a, v["params"])
    params["Embed_0"]["embedding"] = gamma.at[2].set(2.0)
    params["Embed_1"]["embedding"] = beta.at[2].set(1.0)
    _, inter = g.apply({**v, "params": params}, z, train=False, labels=y, capture_intermediates=True)
    _, inter0 = g.apply(v, z, train=False, labels=y, capture_intermediates=True)
    bn, bn0 = inter["intermediates"]["BatchNorm_0"]["__call__"][0], inter0["intermediates"]["BatchNorm_0"]["__call__"][0]
    np.testing.assert_array_equal(bn, bn0)  # the normalisation itself is unconditional
    out, out0 = g.apply({**v, "params": params}, z, train=False, labels=y), g.apply(v, z, train=False, labels=y)
    changed = np.any(np.asarray(out) != np.asarray(out0), axis=(1, 2, 3))
    np.testing.assert_array_equal(changed, np.asarray(y) == 2)


@pytest.mark.slow
def test_acgan_discriminator_returns_class_logits_and_the_loss_is_cross_entropy():
    d = dense.Discriminator(hidden=(6,), condition="acgan", num_classes=4)
    x = jax.random.uniform(jax.random.PRNGKey(2), (5, 3, 3, 1), minval=-1, maxval=1)
    out, logits = d.apply(_params(d, x), x)
    assert out.shape == (5,) and logits.shape == (5, 4) and logits.dtype == jnp.float32
    y = jnp.array([0, 3, 1, 2, 3])
    by_hand = -np.mean([np.log(np.exp(logits[i, y[i]]) / np.sum(np.exp(logits[i]))) for i in range(5)])
    np.testing.assert_allclose(class_cross_entropy(logits, y), by_hand, rtol=1e-5)


@pytest.mark.slow
@pytest.mark.parametrize("arch", ["dense", "dcgan"])
@pytest.mark.parametrize("condition", ["concat", "projection", "acgan"])
def test_every_condition_trains_with_both_architectures(tiny_config, tiny_data, arch, condition):
    config = on_arch(tiny_config, arch, condition=condition, d_update="joint", loss="hinge",
                                 penalty="r1", penalty_weight=1.0, d_norm="spectral")
    state = create_train_state(config, jax.random.PRNGKey(0))
    step = jax.jit(make_train_step(config))
    real = jnp.asarray(tiny_data.normalized(slice(0, 8)))
    labels = jnp.asarray(tiny_data.labels[:8])
    new, metrics = step(state, real, jax.random.PRNGKey(1), labels)
    assert all(np.isfinite(float(v)) for v in metrics.values())
    assert ("g_class_loss" in metrics) == (condition == "acgan")
    if condition == "acgan":  # 10 classes, untrained: cross-entropy near log 10
        assert abs(float(metrics["d_class_loss_real"]) - np.log(10)) < 0.5
    # The labels reach the step: other labels, other numbers (acgan's D does not see them: its class loss).
    _, other = step(state, real, jax.random.PRNGKey(1), (labels + 1) % 10)
    seen = "d_class_loss_real" if condition == "acgan" else "d_loss_real"
    assert float(other[seen]) != float(metrics[seen])
    with pytest.raises(ValueError, match="needs the real images' labels"):
        make_train_step(config)(state, real, jax.random.PRNGKey(1))


@pytest.mark.slow
def test_unconditional_step_ignores_labels(tiny_config, tiny_data):
    state = create_train_state(tiny_config, jax.random.PRNGKey(0))
    step = jax.jit(make_train_step(tiny_config))
    real = jnp.asarray(tiny_data.normalized(slice(0, 8)))
    a = step(state, real, jax.random.PRNGKey(1))[1]
    b = step(state, real, jax.random.PRNGKey(1), jnp.asarray(tiny_data.labels[:8]))[1]
    assert {k: float(v) for k, v in a.items()} == {k: float(v) for k, v in b.items()}


@pytest.mark.slow
def test_keras_cgan_preset_is_cgan_py():
    """Parameter counts of Keras-GAN cgan.py's model.summary(): G = the reference's 1,489,936 +
    Embedding(10, 100); D = Embedding(10, 784) + Dense 784->512, 512->512, 512->512, 512->1."""
    config = presets.preset("keras_cgan")
    assert (config.condition, config.d_hidden, config.d_dropout, config.batch_size, config.iterations,
            config.sample_every, config.fake_labels, config.g_hidden) == (
        "concat", (512, 512, 512), 0.4, 32, 20000, 200, "real", (256, 512, 1024))
    state = create_train_state(config, jax.random.PRNGKey(0))
    assert models.count_params(state.g.params) == 1_489_936 + 1_000
    assert models.count_params(state.d.params) == 7_840 + 401_920 + 262_656 + 262_656 + 513


@pytest.mark.slow
def test_dropout_after_every_hidden_layer_but_the_first_only_when_training():
    d = dense.Discriminator(hidden=(64, 64, 64), dropout=0.5)
    x = jax.random.uniform(jax.random.PRNGKey(2), (8, 2, 2, 1))
    v = _params(d, x)
    off = dense.Discriminator(hidden=(64, 64, 64)).apply(v, x)
    np.testing.assert_array_equal(d.apply(v, x), off)  # no 'dropout' key: no dropout
    on = d.apply(v, x, rngs={"dropout": jax.random.PRNGKey(5)})
    assert not np.allclose(on, off)
    _, inter = d.apply(v, x, rngs={"dropout": jax.random.PRNGKey(5)}, capture_intermediates=True)
    drops = [inter["intermediates"][f"Dropout_{i}"]["__call__"][0] for i in range(2)]
    assert "Dropout_2" not in inter["intermediates"]  # layers 2 and 3 only
    zero_fraction = np.mean([np.mean(np.asarray(t) == 0) for t in drops])
    assert 0.35 < zero_fraction < 0.65


def test_class_index_by_name_or_number_and_one_line_errors():
    config = dataclasses.replace(config_lib.Config(), condition="projection")
    assert class_index(config, "Sneaker") == 7 and class_index(config, "sneaker") == 7
    assert class_index(config, "0") == 0 and class_index(config, "T-shirt/top") == 0
    with pytest.raises(UserError, match="unknown class 'Boot'.*7 Sneaker"):
        class_index(config, "Boot")
    with pytest.raises(UserError, match="needs a class-conditional run.*9 Ankle boot"):
        class_index(config_lib.Config(), "Sneaker")
    np.testing.assert_array_equal(balanced_labels(config, 12), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1])
    np.testing.assert_array_equal(class_grid_labels(config, 2)[:5], [0, 0, 1, 1, 2])


def test_label_accuracy_and_intra_class_fid_by_hand():
    probs = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.3, 0.7]])
    assert scores.label_accuracy(probs, np.array([0, 1, 1, 1])) == 0.75
    rng = np.random.default_rng(0)
    real, fake = rng.normal(size=(40, 3)), rng.normal(size=(30, 3)) + 0.5
    real_y, fake_y = np.arange(40) % 2, np.arange(30) % 2
    by_hand = np.mean([scores.fid(real[real_y == c], fake[fake_y == c]) for c in (0, 1)])
    assert scores.intra_class_fid(real, real_y, fake, fake_y) == pytest.approx(by_hand, rel=1e-12)
    assert scores.intra_class_fid(real, real_y, real, real_y) == pytest.approx(0.0, abs=1e-6)


def test_real_images_asked_for_their_own_classes_score_high(tiny_data):
    """The scores' machinery: real images with their true labels against a reference of the same
    images: intra-class FID 0, label accuracy the classifier's agreement with the labels asked for; wrong labels
    raise the intra-class FID and change the label accuracy to the agreement with them (on these synthetic images
    the Fashion-MNIST classifier is at chance either way, so the accuracy's direction is not a claim here)."""
    ref = Reference(tiny_data.normalized(), labels=tiny_data.labels, class_names=tiny_data.class_names)
    right = ref.score(tiny_data.normalized(), kid_subsets=2, kid_subset_size=10, labels=tiny_data.labels)
    wrong = ref.score(tiny_data.normalized(), kid_subsets=2, kid_subset_size=10, labels=(tiny_data.labels + 1) % 10)
    assert right["intra_class_fid"] == pytest.approx(0.0, abs=1e-3)
    assert right["label_accuracy"] == np.mean(ref.probs.argmax(1) == tiny_data.labels)
    assert wrong["intra_class_fid"] > 1.0 and "label_accuracy" not in ref.score(tiny_data.normalized(), 2, 10)
    assert wrong["label_accuracy"] == np.mean(ref.probs.argmax(1) == (tiny_data.labels + 1) % 10)


@pytest.fixture(scope="module")
def conditional_run(tmp_path_factory):
    """A tiny projection run on synthetic data, with evaluation: (workdir, config, data)."""
    workdir = str(tmp_path_factory.mktemp("cgan") / "run")
    data = input_pipeline.synthetic_dataset(96, seed=2)
    config = dataclasses.replace(config_lib.Config(), iterations=8, batch_size=8, latent_dim=8, g_hidden=(16,),
                                 d_hidden=(16,), sample_every=4, log_every=4, checkpoint_every=4, eval_every=7,
                                 eval_samples=20, progress=False, condition="projection")
    loop.train_and_evaluate(config, workdir, dataset=data)
    return workdir, config, data


@pytest.mark.slow
def test_conditional_run_writes_class_grids_and_obedience_scores(conditional_run):
    workdir, config, _ = conditional_run
    assert sorted(f for f in os.listdir(f"{workdir}/samples") if f.startswith("classes")) == [
        "classes_iter_000000.png", "classes_iter_000004.png", "classes_iter_000007.png"]
    assert os.path.isfile(f"{workdir}/final_classes.png")
    records = [names.plain(json.loads(line)) for line in open(f"{workdir}/metrics.jsonl")]
    evaluated = [r for r in records if "fid" in r]
    assert [r["iteration"] for r in evaluated] == [0, 7]
    for r in evaluated:
        assert 0 <= r["label_accuracy"] <= 1 and r["intra_class_fid"] > 0


@pytest.mark.slow
def test_sampler_makes_the_classes_asked_for(conditional_run):
    """Asking for a class changes the image; the same class and key give the same image."""
    workdir, config, _ = conditional_run
    config, _, state = load_run(workdir)
    sample = make_sampler(config)
    key = jax.random.PRNGKey(0)
    sevens = sample(state, key, 4, jnp.full((4,), 7, jnp.int32))
    zeros = sample(state, key, 4, jnp.zeros((4,), jnp.int32))
    assert not np.allclose(sevens, zeros)
    np.testing.assert_array_equal(sevens, sample(state, key, 4, jnp.full((4,), 7, jnp.int32)))


@pytest.mark.integration
def test_sample_cli_class_and_its_errors(conditional_run, tmp_path, monkeypatch):
    workdir, _, _ = conditional_run
    out, npz = tmp_path / "sneakers.png", tmp_path / "sneakers.npz"
    assert sample.main(["--workdir", workdir, "--class", "Sneaker", "--n", "16", "--out", str(out),
                        "--npz", str(npz)]) == 0
    assert out.is_file()
    saved = np.load(npz)
    assert saved["arr_0"].shape == (16, 28, 28, 1) and saved["arr_0"].dtype == np.uint8 and set(saved["labels"].tolist()) == {7}
    assert_one_line_error(run_module("gan_jax.sample", "--workdir", workdir, "--class", "Boots"),
                          "unknown class 'Boots'", "7 Sneaker", "9 Ankle boot")


@pytest.mark.integration
def test_sample_class_on_an_unconditional_run_is_one_line(tmp_path):
    data = input_pipeline.synthetic_dataset(32, seed=2)
    config = dataclasses.replace(presets.preset("smoke"), iterations=2, batch_size=8, latent_dim=8,
                                 g_hidden=(16,), d_hidden=(16,), eval_every=0, progress=False)
    loop.train_and_evaluate(config, str(tmp_path / "plain"), dataset=data)
    assert_one_line_error(run_module("gan_jax.sample", "--workdir", str(tmp_path / "plain"), "--class", "Bag"),
                          "--class needs a class-conditional run", "--condition none", "8 Bag")


@pytest.mark.slow
def test_evaluate_scores_a_conditional_run(conditional_run, tmp_path, monkeypatch, capsys):
    workdir, _, data = conditional_run
    monkeypatch.setattr(input_pipeline, "load", lambda *a, **k: data)
    out = tmp_path / "eval.json"
    assert evaluate.main(["--workdir", workdir, "--n", "40", "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["condition"] == "projection" and 0 <= result["label_accuracy_40"] <= 1
    assert result["intra_class_fid_40"] > 0
    assert "label acc" in capsys.readouterr().out


@pytest.mark.slow
def test_resume_with_another_condition_is_refused(conditional_run):
    workdir, config, data = conditional_run
    with pytest.raises(UserError, match="condition"):
        loop.train_and_evaluate(dataclasses.replace(config, condition="acgan", iterations=12), workdir,
                                resume=True, dataset=data)
    resumed = loop.train_and_evaluate(dataclasses.replace(config, iterations=10), workdir, resume=True,
                                      dataset=data)
    assert int(resumed.step) == 10


@pytest.mark.integration
def test_condition_flag_errors():
    assert_one_line_error(run_module("gan_jax.train", "--condition", "labels", "--workdir", "/tmp/never"),
                          "--condition", "invalid choice", "projection")
    with pytest.raises(UserError, match="--d-dropout must be in"):
        dataclasses.replace(config_lib.Config(), d_dropout=1.0).validate()
    with pytest.raises(UserError, match="at least 2 classes"):
        config_lib.Config(condition="acgan").with_data((28, 28, 1), ("only",))
