"""The command lines: help texts, and one-line errors (exit 2, no traceback) for bad flags."""

import argparse
import dataclasses
import json
import subprocess

import pytest

from conftest import assert_one_line_error, in_process, run_module
from gan_jax import config as config_lib
from gan_jax import presets
from gan_jax import flags
from gan_jax.errors import UserError


def test_help_documents_every_config_field(capfd):
    proc = in_process(capfd, "train", "--help")
    assert proc.returncode == 0
    text = " ".join(proc.stdout.split())
    for f in dataclasses.fields(config_lib.Config):
        if f.name in config_lib.DERIVED_FIELDS:  # facts of the dataset, not flags
            assert f"--{f.name.replace('_', '-')}" not in text, f.name
        else:
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
    (["--resume", "--overwrite"], ["--resume and --overwrite contradict each other"]),
    (["--loss", "wasserstein"], ["--loss", "invalid choice: 'wasserstein'", "hinge", "ns"]),
    (["--penalty", "gp"], ["--penalty must be none or one or more of", "wgan_gp", "got 'gp'"]),
    (["--augment", "flip"], ["--augment must be none or one or more of", "diffaug, color, translation, cutout"]),
    (["--arch", "resnet"], ["--arch", "invalid choice", "dcgan"]),
    (["--metrics", "fid_5,pr"], ["--metrics must be all or one or more of fid, kid, pr", "at least 10: fid_10k",
                                 "got 'fid_5,pr'"]),
    (["--d-norm", "instance"], ["--d-norm", "invalid choice"]),
    (["--d-steps", "0"], ["--d-steps must be a positive integer, got 0"]),
    (["--g-ema", "1.0"], ["--g-ema must be in [0, 1), got 1.0"]),
    (["--penalty-weight", "-1"], ["--penalty-weight must be >= 0"]),
    (["--d-learning-rate=-1e-4"], ["--d-learning-rate must be >= 0 (0 freezes that network)"]),
    (["--g-beta2", "1"], ["--g-beta2 must be in [0, 1)"]),
    pytest.param(["--coordinator", "localhost"], ["--coordinator", "'localhost' is not HOST:PORT"], marks=pytest.mark.integration),  # joins jax.distributed: a process
    pytest.param(["--num-processes", "0"], ["--num-processes", "'0' is not a whole number >= 1"], marks=pytest.mark.integration),  # joins jax.distributed: a process
    pytest.param(["--process-id", "-1"], ["--process-id", "'-1' is not a whole number >= 0"], marks=pytest.mark.integration),  # joins jax.distributed: a process
    pytest.param(["--num-processes", "2", "--process-id", "2"], ["--process-id 2 is not below --num-processes 2",
                                                                  "0 .. 1"], marks=pytest.mark.integration),
    pytest.param(["--num-processes", "2", "--process-id", "0"], ["could not join the run's processes",
                                                                  "coordinator_address should be defined",
                                                                  "--coordinator"], marks=pytest.mark.integration),
])
def test_bad_flags_are_one_line_errors(args, needles, tmp_path, capfd):
    """In this process (what `python -m gan_jax.train` runs: errors.run_cli over train.main; a process of
    its own adds only ~3 s of imports each; test_a_bad_flag_in_a_process_of_its_own checks one there),
    except the flags that join several processes (jax.distributed cannot be left once joined)."""
    args = args if "--workdir" in args else [*args, "--workdir", str(tmp_path / "run")]
    joins = any(a in args for a in ("--coordinator", "--num-processes", "--process-id"))  # jax.distributed: its own
    assert_one_line_error(run_module("gan_jax.train", *args) if joins else _in_process(args, capfd), *needles)
    assert not (tmp_path / "run" / "config.json").exists()


def _in_process(args, capfd) -> subprocess.CompletedProcess:
    return in_process(capfd, "train", *args)


@pytest.mark.integration
def test_a_bad_flag_in_a_process_of_its_own(tmp_path):
    assert_one_line_error(run_module("gan_jax.train", "--iterations", "2147483648", "--workdir", str(tmp_path / "run")),
                          "--iterations 2147483648 is more than an int32 holds", "use at most 2147483647")
    assert not (tmp_path / "run").exists()


LIMITS = [  # (flags that fit: the largest value; flags one past it; what the error says)
    (["--iterations", "2147483647"], ["--iterations", "2147483648"], "--iterations 2147483648 is more than an int32"),
    (["--log-every", "2147483647"], ["--log-every", "2147483648"], "use at most 2147483647"),
    (["--max-steps-per-call", "2147483647"], ["--max-steps-per-call", "2147483648"], "int32"),
    (["--g-hidden", "8,2147483647"], ["--g-hidden", "8,2147483648"], "--g-hidden 8,2147483648 is more than an int32"),
    (["--seed", "4294967295"], ["--seed", "4294967296"], "--seed 4294967296 is more than the random key's uint32 "
                                                         "holds (it would repeat seed 0); use at most 4294967295"),
    (["--batch-size", "1073741823", "--d-steps", "2"], ["--batch-size", "1073741824", "--d-steps", "2"],
     "--d-steps 2 x --batch-size 1073741824 images per iteration is more than an int32 holds"),
    (["--learning-rate", "3.4028234e38"], ["--learning-rate", "3.5e38"], "--learning-rate 3.5e+38 is past float32's range"),
    (["--penalty-weight", "1.1754944e-38"], ["--penalty-weight", "1.1e-38"], "below float32's smallest normal number"),
    (["--adam-eps", "1.1754944e-38"], ["--adam-eps", "1e-45"], "use 0 or at least 1.175494e-38"),
    (["--beta2", "0.99999994"], ["--beta2", "0.99999998"], "--beta2 0.99999998 rounds to 1 in float32"),
    (["--g-ema", "0.99999994"], ["--g-ema", "0.99999999"], "use at most 0.9999999403953552"),
]


@pytest.mark.parametrize("fits,past,needle", LIMITS)
def test_numbers_are_checked_against_what_holds_them(fits, past, needle):
    """Config.validate (every run, population member, study config, --config file and resume goes through it):
    the largest value its int32 / uint32 / float32 holds passes, one past it is a one-line UserError."""
    base = config_lib.Config()
    for given, ok in ((fits, True), (past, False)):
        values = dict(zip(given[::2], given[1::2]))
        parser = argparse.ArgumentParser()
        flags.add_config_flags(parser)
        args = parser.parse_args([a for k, v in values.items() for a in (k, v)])
        if ok:
            flags.config_from_args(args, base)
        else:
            with pytest.raises(UserError) as error:
                flags.config_from_args(args, base)
            assert needle in str(error.value) and "\n" not in str(error.value)


def test_limits_hold_for_config_files_populations_and_resumes(tmp_path, capfd):
    """The same checks reach a --config file, a population's lists and a resume's new flags."""
    path = tmp_path / "c.json"
    path.write_text(json.dumps({"iterations": 2**31}))
    assert_one_line_error(_in_process(["--config", str(path), "--workdir", str(tmp_path / "a")], capfd),
                          "--iterations 2147483648 is more than an int32 holds")
    assert_one_line_error(_in_process(["--learning-rate", "1e-4,1e39", "--runs", "2", "--workdir",
                                       str(tmp_path / "b")], capfd), "--learning-rate 1e+39 is past float32's range")
    stored = tmp_path / "c"
    stored.mkdir()
    (stored / "config.json").write_text(json.dumps(config_lib.to_dict(config_lib.Config())))
    assert_one_line_error(_in_process(["--resume", "--iterations", "2147483648", "--workdir", str(stored)], capfd),
                          "--iterations 2147483648 is more than an int32 holds")
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_sample_errors(tmp_path, capfd):
    assert_one_line_error(in_process(capfd, "sample", "--workdir", str(tmp_path)), "holds no run")
    assert_one_line_error(in_process(capfd, "sample", "--workdir", str(tmp_path), "--n", "x"), "is not a whole number >= 1")


def test_evaluate_refuses_a_bad_metrics_entry(tmp_path, capfd):
    """gan_jax.evaluate --metrics is checked as training's is (Config.validate), before anything is read."""
    assert_one_line_error(in_process(capfd, "evaluate", "--workdir", str(tmp_path), "--metrics", "all_10k"),
                          "--metrics", "must be all or one or more of", "each may carry its number of samples")


def test_presets_change_only_what_differs():
    assert presets.preset("reference") == config_lib.Config()
    pg = presets.preset("pytorch_gan")
    diff = {f.name for f in dataclasses.fields(pg) if getattr(pg, f.name) != getattr(config_lib.Config(), f.name)}
    assert diff == {"d_update", "fake_bn"}
    with pytest.raises(UserError, match="unknown preset"):
        presets.preset("nope")


def test_config_round_trips_and_rejects_unknown_fields():
    c = dataclasses.replace(config_lib.Config(), g_hidden=(8, 16))
    assert config_lib.from_dict(config_lib.to_dict(c)) == c
    with pytest.raises(UserError, match="unknown config field"):
        config_lib.from_dict({"iteratons": 5})


def test_literature_presets_are_their_papers():
    """Each preset is valid and differs from the default in exactly what its paper changes."""
    default = config_lib.Config()
    for name in presets.PRESETS:
        presets.preset(name).validate()
    gp = presets.preset("wgan_gp")
    assert (gp.loss, gp.penalty, gp.penalty_weight, gp.learning_rate, gp.beta1, gp.beta2, gp.d_steps) == (
        "wgan", "wgan_gp", 10.0, 1e-4, 0.0, 0.9, 5)
    sn = presets.preset("sngan")
    assert (sn.loss, sn.d_norm, sn.adam("g"), sn.adam("d")) == ("hinge", "spectral", (1e-4, 0.0, 0.9), (4e-4, 0.0, 0.9))
    dc = presets.preset("dcgan")
    assert (dc.arch, dc.d_norm, dc.batch_size) == ("dcgan", "batch", 64)
    assert presets.preset("lsgan") == dataclasses.replace(default, loss="lsgan")
    assert presets.preset("reference_bf16") == dataclasses.replace(default, compute_dtype="bfloat16")
    assert default.adam("g") == default.adam("d") == (2e-4, 0.5, 0.999)  # shared unless given


@pytest.mark.slow
def test_resume_with_preset_is_the_same_command_again(tmp_path, capfd, monkeypatch):
    """`--preset P --resume` starts a run where there is none and continues it after; a --preset
    that describes another run is refused in one line. (Synthetic data: the CLI's loader patched.)"""
    from gan_jax import input_pipeline

    monkeypatch.setattr(input_pipeline, "load", lambda *a, **k: input_pipeline.synthetic_dataset(64))
    monkeypatch.setattr(input_pipeline, "split_bytes", lambda *a, **k: None)
    workdir = str(tmp_path / "run")
    common = ["--workdir", workdir, "--resume", "--no-progress", "--batch-size", "8", "--latent-dim", "8",
              "--g-hidden", "16", "--d-hidden", "16", "--eval-every", "0", "--log-every", "2", "--checkpoint-every", "2"]
    first = in_process(capfd, "train", "--preset", "lsgan", *common, "--iterations", "4")
    assert first.returncode == 0 and "--resume: no run in" in first.stderr, first.stderr[-2000:]
    again = in_process(capfd, "train", "--preset", "lsgan", *common, "--iterations", "6")
    assert again.returncode == 0 and "no run in" not in again.stderr, again.stderr[-2000:]
    assert_one_line_error(in_process(capfd, "train", "--preset", "wgan_gp", *common),
                          "describe another run", "loss", "drop --preset")


def test_every_config_field_is_declared_once_with_its_kind():
    """One declaration per field: a kind, a help group and a help line; the kind tuples derive from it."""
    import dataclasses

    from gan_jax import config as config_lib

    for f in dataclasses.fields(config_lib.Config):
        assert f.metadata.get("kind") in config_lib.KINDS, f"{f.name} lacks a kind (declare it with setting())"
        assert f.metadata["group"] in config_lib.GROUPS and f.metadata["help"], f.name
    assert set(config_lib.TRACED_FIELDS) == {"penalty_weight", "g_ema", "acgan_weight", "augment_p", "augment_p_end",
                                             "penalty_weight_end", "g_ema_half_life", "g_ema_half_life_end",
                                             "learning_rate_end", "beta2_end"}
    assert set(config_lib.POPULATION_FIELDS) <= set(config_lib.MATH_FIELDS)
    assert not set(config_lib.SHAPE_FIELDS) & set(config_lib.MATH_FIELDS)
    assert config_lib.choices("penalty")[0] == "none" and config_lib.choices("d_norm") == ("none", "batch", "layer",
                                                                                            "spectral")


def test_print_config_and_a_config_file(tmp_path, capfd):
    """--print-config prints the resolved config as JSON (exit 0); --config FILE starts from it, flags override."""
    proc = in_process(capfd, "train", "--preset", "dcgan", "--seed", "3", "--print-config")
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    printed = json.loads(proc.stdout)
    assert (printed["arch"], printed["batch_size"], printed["seed"]) == ("dcgan", 64, 3)
    path = tmp_path / "mine.json"
    path.write_text(json.dumps({**printed, "iterations": 7}))
    again = json.loads(in_process(capfd, "train", "--config", str(path), "--batch-size", "32", "--print-config").stdout)
    assert again == {**printed, "iterations": 7, "batch_size": 32}
    (tmp_path / "partial.json").write_text(json.dumps({"loss": "hinge"}))
    partial = json.loads(in_process(capfd, "train", "--config", str(tmp_path / "partial.json"), "--print-config").stdout)
    assert partial["loss"] == "hinge" and partial["batch_size"] == 128
    (tmp_path / "bad.json").write_text(json.dumps({"los": "hinge"}))
    assert_one_line_error(in_process(capfd, "train", "--config", str(tmp_path / "bad.json")), "unknown config field",
                          "los")
    assert_one_line_error(in_process(capfd, "train", "--config", str(tmp_path / "none.json")), "cannot read config file")
    assert_one_line_error(in_process(capfd, "train", "--config", str(path), "--preset", "dcgan"), "not allowed with")


def test_the_argparse_number_types_stop_at_what_holds_them():
    assert flags.positive_int("2147483647") == 2147483647 and flags.seed("4294967295") == 4294967295
    assert flags.seed_list("0,4294967295") == (0, 4294967295)
    for parse, past in ((flags.positive_int, "2147483648"), (flags.seed, "4294967296"),
                        (flags.seed_list, "0,4294967296")):
        with pytest.raises(argparse.ArgumentTypeError, match="holds"):
            parse(past)


@pytest.mark.parametrize("module,args,needle", [
    ("sample", ["--workdir", "w", "--seed", "4294967296"], "argument --seed: 4294967296 is more than the random key's"),
    ("sample", ["--workdir", "w", "--n", "2147483648"], "argument --n: 2147483648 is more than an int32 holds"),
    ("evaluate", ["--workdir", "w", "--seed", "4294967296"], "use at most 4294967295"),
    ("evaluate", ["--workdir", "w", "--n", "2147483648"], "use at most 2147483647"),
    ("study", ["--eval-seed", "4294967296"], "argument --eval-seed: 4294967296 is more than the random key's"),
    ("study", ["--seeds", "0,4294967296"], "seed 4294967296 is more than the random key's uint32 holds"),
    ("study", ["--iterations", "2147483648"], "argument --iterations: 2147483648 is more than an int32 holds"),
    ("train", ["--seeds", "1,4294967296"], "seed 4294967296 is more than"),
    ("train", ["--runs", "2147483648"], "argument --runs: 2147483648 is more than an int32 holds"),
])
def test_every_command_line_checks_its_numbers(module, args, needle, tmp_path, capfd):
    """sample, evaluate and study (and train's population flags): one line, exit 2, before any work."""
    args = [str(tmp_path / "w") if a == "w" else a for a in args]
    assert_one_line_error(in_process(capfd, module, *args), needle)
    assert not (tmp_path / "w").exists()
