"""Installable the ordinary way: the wheel and sdist carry every file the package reads, and a wheel
installed into a fresh virtual environment trains with evaluation on through its console commands."""

import json
import math
import os
import subprocess
import sys
import tarfile
import zipfile

import pytest

from conftest import REPO


def _package_data() -> list[str]:
    """Every file under gan_jax/ that is not Python source (what the package opens under its own directory),
    as tracked by git."""
    files = subprocess.run(["git", "ls-files", "gan_jax"], cwd=REPO, capture_output=True, text=True, check=True)
    data = [f for f in files.stdout.split() if not f.endswith(".py")]
    assert "gan_jax/metrics/classifier.msgpack" in data and "gan_jax/metrics/classifier.json" in data
    return data


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> str:
    """The wheel, built offline from the working tree (no build isolation, no dependencies)."""
    out = tmp_path_factory.mktemp("wheel")
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
                           str(out), str(REPO)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (path,) = [os.path.join(out, f) for f in os.listdir(out) if f.endswith(".whl")]
    return path


@pytest.mark.integration
def test_the_wheel_holds_every_file_the_package_reads(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    missing = [f for f in _package_data() if f not in names]
    assert not missing, missing
    entry_points = zipfile.ZipFile(wheel).read(next(n for n in names if n.endswith("entry_points.txt"))).decode()
    for command in ("gan-jax-train", "gan-jax-sample", "gan-jax-evaluate", "gan-jax-study"):
        assert f"{command} = gan_jax." in entry_points, command


@pytest.mark.integration
def test_the_sdist_holds_every_file_the_package_reads(tmp_path):
    code = ("import sys; from setuptools import build_meta; "
            "print(build_meta.build_sdist(sys.argv[1]))")
    proc = subprocess.run([sys.executable, "-c", code, str(tmp_path)], cwd=REPO, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    name = proc.stdout.split()[-1]
    with tarfile.open(tmp_path / name) as sdist:
        names = {n.split("/", 1)[1] for n in sdist.getnames() if "/" in n}
    missing = [f for f in _package_data() if f not in names]
    assert not missing, missing


@pytest.mark.integration
def test_installed_wheel_trains_with_evaluation_in_a_fresh_venv(wheel, tmp_path, tfds_dir, manual_dir):
    """A fresh venv (its dependencies borrowed from this environment by a path entry, gan_jax itself only
    from the wheel): `gan-jax-train` trains with in-training evaluation on, and its FID is finite; each
    console command is its module's main."""
    import site

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    (site_dir,) = (venv / "lib").glob("python*/site-packages")
    # This environment's packages as a plain path (its .pth files, the editable gan_jax among them, are not run).
    (site_dir / "deps.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    python, bin_dir = str(venv / "bin" / "python"), venv / "bin"
    proc = subprocess.run([sys.executable, "-m", "pip", "--python", python, "install", "-q", "--no-deps",
                           "--no-index", wheel], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    env = {**os.environ, "JAX_PLATFORMS": "cpu", "GAN_JAX_MANUAL_DIR": manual_dir, "GAN_JAX_DATA_DIR": tfds_dir}
    where = subprocess.run([python, "-c", "import gan_jax; print(gan_jax.__file__)"], cwd=tmp_path, env=env,
                           capture_output=True, text=True, timeout=120)
    assert where.stdout.strip().startswith(str(site_dir)), where  # the installed copy, not the checkout

    workdir = tmp_path / "run"
    run = subprocess.run([str(bin_dir / "gan-jax-train"), "--preset", "smoke", "--iterations", "3", "--eval-every", "2",
                          "--eval-samples", "100", "--no-progress", "--workdir", str(workdir)], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "evaluation off" not in run.stderr
    fids = [json.loads(line)["fid_100"] for line in open(workdir / "metrics.jsonl") if "fid_100" in line]
    assert len(fids) == 2 and all(math.isfinite(f) and f > 0 for f in fids)
    for module in ("train", "sample", "evaluate", "study"):
        console = subprocess.run([str(bin_dir / f"gan-jax-{module}"), "--help"], cwd=tmp_path, env=env,
                                 capture_output=True, text=True, timeout=120)
        as_module = subprocess.run([python, "-m", f"gan_jax.{module}", "--help"], cwd=tmp_path, env=env,
                                   capture_output=True, text=True, timeout=120)
        assert console.returncode == 0 and console.stdout == as_module.stdout and console.stdout, module
