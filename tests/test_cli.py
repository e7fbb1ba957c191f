"""The command lines: help texts, and one-line errors (exit 2, no traceback) for bad flags."""

import dataclasses

import pytest

from conftest import assert_one_line_error, run_module
from gan_jax import config as config_lib
from gan_jax.errors import UserError


def test_help_documents_every_config_field():
    proc = run_module("gan_jax.train", "--help")
    assert proc.returncode == 0
    text = " ".join(proc.stdout.split())
    for f in dataclasses.fields(config_lib.Config):
        assert f"--{f.name.replace('_', '-')}" in text, f.name
    assert "Keras `generator.predict`" in text and "(default: 10001)" in text


@pytest.mark.parametrize("args,needles", [
    (["--iterations", "0"], ["--iterations must be a positive integer, got 0"]),
    (["--batch-size", "-4"], ["--batch-size must be a positive integer"]),
    (["--latent-dim", "0"], ["--latent-dim must be a positive integer"]),
    (["--iterations", "ten"], ["--iterations", "invalid int value: 'ten'", "see --help"]),
    (["--d-update", "both"], ["--d-update", "invalid choice: 'both'"]),
    (["--fake-bn", "eval"], ["--fake-bn", "invalid choice"]),
    (["--preset", "huge"], ["--preset", "invalid choice"]),
    (["--learning-rate", "0"], ["--learning-rate must be > 0"]),
    (["--g-hidden", "256,x"], ["--g-hidden", "comma-separated integers"]),
    (["--colour", "red"], ["unrecognized arguments: --colour red"]),
    (["--devices", "64"], ["--devices 64 asked for", "device(s) present"]),
    (["--resume", "--workdir", "/nonexistent/run"], ["holds no run"]),
])
def test_bad_flags_are_one_line_errors(args, needles, tmp_path):
    args = args if "--workdir" in args else [*args, "--workdir", str(tmp_path / "run")]
    assert_one_line_error(run_module("gan_jax.train", *args), *needles)
    assert not (tmp_path / "run" / "config.json").exists()


def test_sample_errors(tmp_path):
    assert_one_line_error(run_module("gan_jax.sample", "--workdir", str(tmp_path)), "holds no run")
    assert_one_line_error(run_module("gan_jax.sample", "--workdir", str(tmp_path), "--n", "x"), "invalid int")


def test_presets_change_only_what_differs():
    assert config_lib.preset("reference") == config_lib.Config()
    pg = config_lib.preset("pytorch_gan")
    diff = {f.name for f in dataclasses.fields(pg) if getattr(pg, f.name) != getattr(config_lib.Config(), f.name)}
    assert diff == {"d_update", "fake_bn"}
    with pytest.raises(UserError, match="unknown preset"):
        config_lib.preset("nope")


def test_config_round_trips_and_rejects_unknown_fields():
    c = dataclasses.replace(config_lib.Config(), g_hidden=(8, 16))
    assert config_lib.from_dict(config_lib.to_dict(c)) == c
    with pytest.raises(UserError, match="unknown config field"):
        config_lib.from_dict({"iteratons": 5})
