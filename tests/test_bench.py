"""bench/step.py and bench/investigations/profile_step.py count the reference's work correctly (the roofline
figures depend on it)."""

import dataclasses
import importlib.util
import sys

import pytest

from conftest import REPO
from gan_jax.config import Config


def _load_step(name="step"):
    """bench/NAME.py (or bench/investigations/NAME.py) as a module."""
    path = REPO / "bench" / f"{name}.py"
    path = path if path.exists() else REPO / "bench" / "investigations" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"bench_{name}", path)
    module = importlib.util.module_from_spec(spec)
    argv, sys.argv = sys.argv, [f"{name}.py"]
    try:
        spec.loader.exec_module(module)
    finally:
        sys.argv = argv
    return module


def test_flops_of_the_reference_iteration():
    step = _load_step()
    # Multiply-adds per image, by hand: G forward 1,483,776; D forward 532,736.
    # fakes: G fwd; D on real and on fake: 2 x (fwd + weight grads + input grads of layers 2-3);
    # G update: G fwd + D fwd + D input grads + G weight grads + G input grads of layers 2-4.
    g, d = 1_483_776, 532_736
    macs = g + 2 * (2 * d + (512 * 256 + 256)) + g + d + d + g + (g - 100 * 256)
    assert macs == 9_368_576
    assert step.flops_per_iteration(Config()) == 2 * 128 * macs  # 2.398 GFLOP
    assert step.flops_per_iteration(dataclasses.replace(Config(), d_update="joint")) == 2 * 128 * macs
    shapes = step.iteration_matmuls(Config())
    assert len(shapes) == 37 and sum(2 * m * k * n for m, k, n in shapes) == 2 * 128 * macs


@pytest.mark.slow
def test_the_profile_reads_each_thunks_matrix_products_from_the_compiled_hlo():
    import jax
    import jax.numpy as jnp
    import numpy as np

    from gan_jax.chunk import make_train_chunk
    from gan_jax.build import create_train_state

    profile = _load_step("profile_step")
    f = jax.jit(lambda a, b, c: jnp.tanh(a @ b) @ c)
    hlo = f.lower(jnp.ones((8, 16)), jnp.ones((16, 32)), jnp.ones((32, 4))).compile().as_text()
    flops = sorted(t["flops"] for t in profile.hlo_thunks(hlo).values() if t["flops"])
    assert flops == [2 * 8 * 32 * 4, 2 * 8 * 16 * 32]
    # The whole reference step: every thunk's matrix products add up to the hand count above.
    chunk, state = make_train_chunk(Config()), create_train_state(Config(), jax.random.PRNGKey(0))
    hlo = chunk.lower(state, jnp.zeros((64, 28, 28, 1), jnp.uint8), np.int32(1)).compile().as_text()
    thunks = profile.hlo_thunks(hlo)
    # XLA turns the three forward products with D's last layer (256 -> 1, one per D pass) into
    # multiply-reduce fusions, which are not dots.
    matvecs = 3 * 2 * 128 * 256
    assert sum(t["flops"] for t in thunks.values()) == _load_step().flops_per_iteration(Config()) - matvecs


@pytest.mark.slow
def test_the_population_bench_runs_and_reports_every_size(capsys):
    """bench/population.py end to end on a small config: one line per K, run-iterations/s = K / time."""
    bench = _load_step("population")
    argv, sys.argv = sys.argv, ["population.py", "--batch", "8", "--sizes", "1,2", "--iterations", "4",
                                "--rounds", "1", "--preset", "smoke"]
    try:
        bench.main()
    finally:
        sys.argv = argv
    lines = capsys.readouterr().out.splitlines()
    table = [line.split() for line in lines if line.strip().startswith(("one run", "population K"))]
    assert [row[:4] for row in table] == [["one", "run", "(K", "singles)"], ["population", "K", "=", "1"],
                                          ["population", "K", "=", "2"]]
    for row in table[1:]:
        k, ms, run_its = int(row[3]), float(row[4]), float(row[5])
        assert abs(run_its - k * 1e3 / ms) <= 0.05 * run_its + 0.1


@pytest.mark.slow
def test_the_presets_bench_prints_one_line_per_preset(capsys):
    bench = _load_step("presets")
    argv, sys.argv = sys.argv, ["presets.py", "--presets", "smoke,lsgan", "--iterations", "1", "--rounds", "2"]
    try:
        bench.main()
    finally:
        sys.argv = argv
    lines = capsys.readouterr().out.splitlines()
    assert "cores; jax" in lines[0]
    rows = [line.split() for line in lines[1:]]
    assert [r[0] for r in rows] == ["smoke", "lsgan"] and "( 1.00x)" in lines[1] and "ms per iteration" in lines[2]


@pytest.mark.integration
def test_the_presets_bench_times_config_files_and_writes_its_record(capsys, tmp_path):
    """--configs LABEL=FILE is timed beside the presets; --json holds each label's median and the run's record."""
    import json

    from gan_jax.config import to_dict
    from gan_jax.presets import preset

    (tmp_path / "mine.json").write_text(json.dumps(to_dict(preset("smoke"))))
    bench = _load_step("presets")
    argv, sys.argv = sys.argv, ["presets.py", "--presets", "lsgan", "--configs", f"m={tmp_path / 'mine.json'}",
                                "--iterations", "1", "--rounds", "2", "--json", str(tmp_path / "out.json")]
    try:
        bench.main()
    finally:
        sys.argv = argv
    rows = [line.split() for line in capsys.readouterr().out.splitlines()[1:]]
    record = json.loads((tmp_path / "out.json").read_text())
    assert [r[0] for r in rows] == ["lsgan", "m"] and set(record["ms_per_iteration"]) == {"lsgan", "m"}
    assert all(len(record["rounds_ms"][k]) == 2 for k in ("lsgan", "m")) and record["batch_size"]["m"] == 128
    assert [line.split(":")[0] for line in record["record"]] == ["date", "command", "commit", "cpu"]


def test_the_products_alone_are_the_steps_own_dot_generals_counted_by_hand():
    import jax
    import jax.numpy as jnp

    bench = _load_step("compare_preset")

    def f(a, b, c, d):  # a plain product, and one batched over 3 with two contracting dimensions
        return jnp.sum(a @ b) + jnp.sum(jnp.einsum("gnij,gijm->gnm", c, d))

    args = (jnp.ones((8, 16)), jnp.ones((16, 4)), jnp.ones((3, 5, 2, 7)), jnp.ones((3, 2, 7, 6)))
    count, gflop, ms = bench.products_alone(jax.jit(f).lower(*args).as_text(), repeats=1)
    assert count == 2 and ms > 0
    assert abs(gflop * 1e9 - (2 * 8 * 16 * 4 + 2 * 3 * 5 * 6 * 14)) < 1e-6


def test_the_suite_profile_sums_compilations_per_file_and_function(tmp_path):
    """bench/investigations/suite_profile.py: junit wall seconds and the recorded compile events, summed by hand."""
    import json

    profile = _load_step("suite_profile")
    (tmp_path / "junit.xml").write_text(
        '<testsuites><testsuite><testcase classname="tests.test_a" name="test_x" time="10.0"/>'
        '<testcase classname="tests.test_a" name="test_y" time="2.5"/>'
        '<testcase classname="tests.test_b" name="test_z[p]" time="4.0"/></testsuite></testsuites>')
    (tmp_path / "compiles_1.json").write_text(json.dumps({"tests/test_a.py::test_x": {"jit(train_step)": [6.0, 1],
                                                                                      "jit(add)": [0.5, 5]}}))
    (tmp_path / "compiles_2.json").write_text(json.dumps({"tests/test_b.py::test_z[p]": {"jit(train_step)": [3.0, 2]}}))
    report = profile.summarize(str(tmp_path)).splitlines()
    assert report[0] == "tests: 3, worker seconds 16.5, of them compiling 9.5 s in 8 compilations (in the pytest processes)"
    assert report[3:5] == ["    12.5        6.5      2  tests/test_a.py", "     4.0        3.0      1  tests/test_b.py"]
    assert report[7:9] == ["      9.0      3  jit(train_step)", "      0.5      5  jit(add)"]
    assert report[11] == "    10.0        6.5      6  tests/test_a.py::test_x"
