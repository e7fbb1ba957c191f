"""Shared fixtures: tiny configs and data for unit tests, the real files for integration tests."""

from __future__ import annotations

import dataclasses
import os
import pathlib
import subprocess
import sys

import pytest

from gan_jax.config import Config
from gan_jax.input_pipeline import synthetic_dataset

REPO = pathlib.Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data" / "fashion_mnist"


@pytest.fixture
def tiny_config() -> Config:
    """A config that trains in well under a second: small nets, small batch, few iterations."""
    return dataclasses.replace(Config(), iterations=12, batch_size=8, latent_dim=8, g_hidden=(16, 32),
                               d_hidden=(32, 16), sample_every=5, log_every=3, checkpoint_every=4,
                               eval_every=0, progress=False)


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
def tfds_dir(tmp_path_factory, manual_dir) -> str:
    """A tfds data_dir with fashion_mnist prepared once (offline, from manual_dir)."""
    from gan_jax import input_pipeline

    path = str(tmp_path_factory.mktemp("tfds"))
    input_pipeline.load_fashion_mnist("test", manual_dir=manual_dir, data_dir=path)
    return path


def run_module(module: str, *args: str, env: dict[str, str] | None = None, timeout: float = 300
               ) -> subprocess.CompletedProcess:
    """Run `python -m module args...` in a subprocess from the repo root, capturing text output."""
    full_env = {**os.environ, "JAX_PLATFORMS": "cpu", **(env or {})}
    return subprocess.run([sys.executable, "-m", module, *args], cwd=REPO, env=full_env,
                          capture_output=True, text=True, timeout=timeout)


def assert_one_line_error(proc: subprocess.CompletedProcess, *needles: str) -> None:
    """Exit status 2, no traceback, one stderr line containing every needle."""
    lines = [ln for ln in proc.stderr.strip().splitlines() if ln.strip()]
    assert proc.returncode == 2, (proc.returncode, proc.stderr[-2000:])
    assert "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert len(lines) == 1, lines
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
