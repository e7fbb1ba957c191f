"""Shared fixtures: tiny configs and data for unit tests, the real files for integration tests."""

from __future__ import annotations

import dataclasses
import json
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile

import jax
import pytest

from gan_jax.config import Config
from gan_jax.input_pipeline import synthetic_dataset

REPO = pathlib.Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data" / "fashion_mnist"

# One JAX persistent compilation cache for the test session, shared by this process, the xdist
# workers (`-n 2` in pyproject.toml: they inherit the environment the controller sets here) and every
# process a test starts: the CLI and multi-process tests start ~40 Python processes that compile the
# same train steps, and a cache hit loads the executable XLA made the first time (the same code, so
# the same numbers) instead of compiling it again. A size limit makes JAX lock the cache's files
# (filelock), so two processes never read a half-written entry. Compilations under 0.2 s (eager ops)
# are not kept: caching them too made the suite slower (thousands of entries, each write locked).
COMPILATION_CACHE_MAX_BYTES, COMPILATION_CACHE_MIN_SECONDS = 4 << 30, 0.2
SESSION_DIR = "GAN_JAX_TEST_SESSION_DIR"
"""Environment variable: the folder the whole test session shares (the cache, the prepared tfds data)."""


def pytest_configure(config) -> None:  # noqa: ARG001
    if SESSION_DIR not in os.environ:  # the controller (or a run without xdist): make it, own it
        os.environ[SESSION_DIR] = tempfile.mkdtemp(prefix="gan_jax_test_session_")
        os.environ["GAN_JAX_TEST_SESSION_OWNER"] = str(os.getpid())
    cache = os.path.join(os.environ[SESSION_DIR], "jit_cache")
    # Nothing outside the session folder: tfds' default data dir (a test that forgets --data-dir, or
    # tfds.testing.mock_data) and gan_jax's own compilation cache folder are the session's too.
    os.environ.update(TFDS_DATA_DIR=os.path.join(os.environ[SESSION_DIR], "tfds_default"),
                      GAN_JAX_CACHE_DIR=os.path.join(os.environ[SESSION_DIR], "gan_jax_cache"))
    os.environ.update(JAX_COMPILATION_CACHE_DIR=cache, JAX_COMPILATION_CACHE_MAX_SIZE=str(COMPILATION_CACHE_MAX_BYTES),
                      JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS=str(COMPILATION_CACHE_MIN_SECONDS))
    jax.config.update("jax_compilation_cache_dir", cache)
    jax.config.update("jax_compilation_cache_max_size", COMPILATION_CACHE_MAX_BYTES)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", COMPILATION_CACHE_MIN_SECONDS)


STRICT = "GAN_JAX_NO_SKIPS"
"""Environment variable: set to 1 (.ci/run sets it), a test skipped for a missing package, file or privilege
fails instead, with the skip's one-line reason: every test runs in CI. Unset, a local run may still skip."""


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):  # noqa: ARG001
    outcome = yield
    _no_skip(outcome.get_result())


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector):  # noqa: ARG001
    outcome = yield
    _no_skip(outcome.get_result())  # a module-level importorskip skips at collection


def _no_skip(report) -> None:
    if os.environ.get(STRICT) == "1" and report.skipped and not hasattr(report, "wasxfail"):
        reason = report.longrepr[-1] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.outcome, report.longrepr = "failed", f"skipped under {STRICT}=1, which every test must run under: {reason}"


def pytest_unconfigure(config) -> None:  # noqa: ARG001
    if os.environ.get("GAN_JAX_TEST_SESSION_OWNER") == str(os.getpid()):
        shutil.rmtree(os.environ[SESSION_DIR], ignore_errors=True)


REAL_DATA_FIXTURES = ("manual_dir", "first_preparation", "tfds_dir")
"""The fixtures that read the real Fashion-MNIST files."""


@pytest.fixture(autouse=True)
def _unit_tests_stay_in_process(request, monkeypatch):
    """The unit tier (every test not marked `integration`) is in-process, on tiny synthetic data: a test there
    that starts a process or reads the real files fails, saying to mark it."""
    if request.node.get_closest_marker("integration") is not None:
        return
    real = [name for name in REAL_DATA_FIXTURES if name in request.fixturenames]
    if real:
        pytest.fail(f"a unit test reads the real data ({', '.join(real)}): mark it @pytest.mark.integration")

    popen = subprocess.Popen.__init__

    def refuse(self, args, *rest, **kwargs):
        program = os.path.basename(str(args[0] if isinstance(args, (list, tuple)) else args).split()[0])
        if program.startswith("python") or program in ("git", "pip") or str(args).startswith(sys.executable):
            raise AssertionError(f"a unit test starts no process ({args!r}): mark it @pytest.mark.integration")
        popen(self, args, *rest, **kwargs)  # a library's own helper (platform's `uname -p`, ...)

    monkeypatch.setattr(subprocess.Popen, "__init__", refuse)


@pytest.fixture
def tiny_config() -> Config:
    """A config that trains in well under a second: small nets, small batch, few iterations."""
    return dataclasses.replace(Config(), iterations=12, batch_size=8, latent_dim=8, g_hidden=(16, 32),
                               d_hidden=(32, 16), sample_every=5, log_every=3, checkpoint_every=4,
                               eval_every=0, progress=False)


def on_arch(config: Config, arch: str, **changes) -> Config:
    """`config` on architecture `arch` (and `changes`), the fields only other architectures read (a tiny config's
    dense widths) back at their defaults: Config.validate refuses them set under `arch`."""
    from gan_jax.config import fields_only_other_architectures_read

    default = Config()
    return dataclasses.replace(config, arch=arch, **{**{n: getattr(default, n)
                                                       for n in fields_only_other_architectures_read(arch)}, **changes})


@pytest.fixture
def tiny_data():
    return synthetic_dataset(64, seed=1)


@pytest.fixture(scope="session")
def manual_dir() -> str:
    """The four original Fashion-MNIST files ($GAN_JAX_MANUAL_DIR, else ../shared/...)."""
    path = os.environ.get("GAN_JAX_MANUAL_DIR") or str(SHARED_DATA)
    if not os.path.isfile(os.path.join(path, "train-images-idx3-ubyte.gz")):
        pytest.skip(f"no Fashion-MNIST files at {path}; set GAN_JAX_MANUAL_DIR")
    return path


@pytest.fixture(scope="session")
def first_preparation(manual_dir) -> tuple[str, subprocess.CompletedProcess]:
    """A tfds data_dir with fashion_mnist prepared once per test session, offline, from manual_dir, by two
    fresh processes started side by side (two runs started at once on a fresh machine: one prepares, the other
    waits for it and reads what it prepared, printing nothing), with TensorFlow's oneDNN path forced on (its
    import banner prints on every CPU then); returns (data_dir, the process that prepared) so a test can check
    what it printed. xdist workers share it: the first to get the lock prepares, the others read what it
    recorded."""
    from filelock import FileLock

    shared = pathlib.Path(os.environ[SESSION_DIR])
    path, record = shared / "tfds", shared / "tfds_preparation.json"
    with FileLock(str(shared / "tfds.lock")):
        if not record.exists():
            code = ("import sys; from gan_jax import input_pipeline; "
                    "input_pipeline.load('fashion_mnist', 'test', manual_dir=sys.argv[1], data_dir=sys.argv[2])")
            procs = [subprocess.Popen([sys.executable, "-c", code, manual_dir, str(path)], cwd=REPO, text=True,
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                      env={**os.environ, "JAX_PLATFORMS": "cpu", **ONEDNN_ON}) for _ in range(2)]
            outs = [p.communicate(timeout=300) for p in procs]
            assert [p.returncode for p in procs] == [0, 0], [err[-3000:] for _, err in outs]
            prepared = [i for i, (_, err) in enumerate(outs) if "prepared fashion_mnist" in err]
            assert len(prepared) == 1, outs
            assert outs[1 - prepared[0]] == ("", ""), outs  # the waiting one read the prepared dataset quietly
            out, err = outs[prepared[0]]
            record.write_text(json.dumps({"args": procs[prepared[0]].args, "stdout": out, "stderr": err}))
        done = json.loads(record.read_text())
    return str(path), subprocess.CompletedProcess(done["args"], 0, done["stdout"], done["stderr"])


@pytest.fixture(scope="session")
def tfds_dir(first_preparation) -> str:
    """A tfds data_dir with fashion_mnist prepared once (offline, from manual_dir)."""
    return first_preparation[0]


ONEDNN_ON = {"TF_ENABLE_ONEDNN_OPTS": "1"}
"""Forces TensorFlow's oneDNN path on. TensorFlow then prints its oneDNN banner on import on
any x86 CPU (by itself it does so only on AVX-512/AMX ones): tests that check gan_jax's output
is exactly its own lines set it, so they catch the banner on the AVX2 machines too."""


def run_module(module: str, *args: str, env: dict[str, str] | None = None, timeout: float = 300
               ) -> subprocess.CompletedProcess:
    """Run `python -m module args...` in a subprocess from the repo root, capturing text output."""
    full_env = {**os.environ, "JAX_PLATFORMS": "cpu", **(env or {})}
    return subprocess.run([sys.executable, "-m", module, *args], cwd=REPO, env=full_env,
                          capture_output=True, text=True, timeout=timeout)


def in_process(capfd, module: str, *args: str) -> subprocess.CompletedProcess:
    """`python -m gan_jax.<module> args...` run in this process (errors.run_cli over the module's main, what
    its console command runs): its exit status and output as run_module gives them, without ~3 s of
    imports. For checks that fail before any work; a process of its own where the process matters."""
    import importlib

    from gan_jax.errors import run_cli

    cli = importlib.import_module(f"gan_jax.{module}")
    capfd.readouterr()
    with pytest.raises(SystemExit) as exit_:
        run_cli(f"python -m gan_jax.{module}", cli.main, list(args))
    out, err = capfd.readouterr()
    return subprocess.CompletedProcess(list(args), exit_.value.code, out, err)


def assert_one_line_error(proc: subprocess.CompletedProcess, *needles: str) -> None:
    """Exit status 2, no traceback, one stderr line containing every needle."""
    lines = [ln for ln in proc.stderr.strip().splitlines() if ln.strip()]
    assert proc.returncode == 2, (proc.returncode, proc.stderr[-2000:])
    assert "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert len(lines) == 1, lines
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])


def last_logged_iteration(workdir) -> int:
    """The iteration of the last complete metrics.jsonl record in `workdir`; -1 if none yet."""
    try:
        lines = open(os.path.join(workdir, "metrics.jsonl")).read().splitlines()
        return json.loads(lines[-1])["iteration"] if lines else -1
    except (FileNotFoundError, json.JSONDecodeError, IndexError):
        return -1
