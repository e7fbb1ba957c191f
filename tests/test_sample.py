"""`python -m gan_jax.sample`'s exports for other evaluators: uint8 pixels (plotting.to_uint8), tiled grids
(plotting.tile), the --npz and --png-dir files read back by independent readers (numpy, PIL)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from PIL import Image

from conftest import in_process
from gan_jax import plotting, sample
from gan_jax.sampling import generate


def test_to_uint8_by_hand():
    """round(127.5 * (x + 1)), half to even, clipped: -1 -> 0, 1 -> 255, 0 -> 127.5 -> 128, out of range clipped."""
    x = np.array([-1.0, 1.0, 0.0, -0.5, 0.5, 2.0, -3.0, 1 / 127.5 - 1, 0.3]).reshape(1, 3, 3, 1)
    want = [0, 255, 128, 64, 191, 255, 0, 1, 166]  # 63.75 -> 64, 191.25 -> 191, 165.75 -> 166
    got = plotting.to_uint8(x)
    assert got.dtype == np.uint8 and got.shape == (1, 3, 3, 1)
    assert got.ravel().tolist() == want


def test_tile_puts_each_image_at_its_cell():
    """5 images of 2x3 pixels in 3 columns, 1-pixel lines: a 5 x 11 image, image i at row i // 3, column i % 3,
    the lines and the empty sixth cell the fill value."""
    pixels = np.arange(5 * 2 * 3, dtype=np.uint8).reshape(5, 2, 3, 1)
    grid = plotting.tile(pixels, cols=3, pad=1, fill=255)
    assert grid.shape == (2 * 3 - 1, 3 * 4 - 1, 1)
    for i in range(5):
        r, c = divmod(i, 3)
        np.testing.assert_array_equal(grid[3 * r:3 * r + 2, 4 * c:4 * c + 3], pixels[i])
    assert (grid[2, :] == 255).all() and (grid[:, 3] == 255).all() and (grid[:, 7] == 255).all()
    assert (grid[3:5, 8:11] == 255).all()  # the sixth cell, empty
    assert plotting.tile(pixels, cols=5, pad=0).shape == (2, 15, 1)


@pytest.fixture
def tiny_run(tmp_path, tiny_config, tiny_data):
    from gan_jax.checkpoints import load_run
    from gan_jax.loop import train_and_evaluate

    workdir = str(tmp_path / "run")
    train_and_evaluate(dataclasses.replace(tiny_config, iterations=2), workdir, dataset=tiny_data)
    return workdir, load_run(workdir)


def test_exports_round_trip_through_numpy_and_pil(tiny_run, tmp_path):
    """--n 150 (a tiled grid: more than FIGURE_MAX) with --npz --npz-float --png-dir: arr_0 is the float images
    rounded by hand; every PNG (read by PIL) and every cell of the grid holds exactly arr_0's pixels."""
    workdir, (config, step, state) = tiny_run
    n = 150
    assert n > sample.FIGURE_MAX
    grid, npz, pngs = tmp_path / "grid.png", tmp_path / "s.npz", tmp_path / "pngs"
    assert sample.main(["--workdir", workdir, "--n", str(n), "--seed", "3", "--out", str(grid), "--npz", str(npz),
                        "--npz-float", "--png-dir", str(pngs)]) == 0
    saved = np.load(npz)
    assert set(saved.files) == {"arr_0", "images", "step", "seed"} and int(saved["step"]) == step
    pixels = saved["arr_0"]
    assert pixels.dtype == np.uint8 and pixels.shape == (n, 28, 28, 1)
    images = np.asarray(generate(config, state, n, 3))
    np.testing.assert_array_equal(saved["images"], images)
    exact = 127.5 * (images.astype(np.float64) + 1)  # by hand, in float64: only float32's ties may round the other way
    off = pixels.astype(np.int64) - np.clip(np.floor(exact + 0.5), 0, 255)
    assert np.abs(off).max() <= 1 and (np.abs(exact[off != 0] % 1 - 0.5) < 1e-4).all(), np.count_nonzero(off)
    assert len(set(np.unique(pixels))) > 20  # G's output covers a range: the check above compares real values
    files = sorted(p.name for p in pngs.iterdir())
    assert files == [f"{i:06d}.png" for i in range(n)]
    for i in (0, 77, n - 1):
        with Image.open(pngs / files[i]) as image:
            assert image.mode == "L" and image.size == (28, 28)
            np.testing.assert_array_equal(np.asarray(image), pixels[i, :, :, 0])
    cols = 12  # ceil(150 / ceil(sqrt(150)) = 13) = 12
    with Image.open(grid) as image:
        whole = np.asarray(image)
    assert whole.shape == (13 * 29 - 1, cols * 29 - 1)
    for i in (0, 13, n - 1):
        r, c = divmod(i, cols)
        np.testing.assert_array_equal(whole[29 * r:29 * r + 28, 29 * c:29 * c + 28], pixels[i, :, :, 0])


def test_export_refusals_are_one_line(tiny_run, tmp_path, capfd):
    """A --png-dir with files, or a file there, and --npz-float without --npz: one line, exit 2, nothing
    written over."""
    workdir, _ = tiny_run
    full = tmp_path / "full"
    full.mkdir()
    (full / "keep.png").write_bytes(b"x")
    proc = in_process(capfd, "sample", "--workdir", workdir, "--n", "2", "--out", str(tmp_path / "g.png"),
                      "--png-dir", str(full))
    assert proc.returncode == 2 and "has files; pass --overwrite" in proc.stderr
    assert (full / "keep.png").read_bytes() == b"x" and not (tmp_path / "g.png").exists()
    proc = in_process(capfd, "sample", "--workdir", workdir, "--png-dir", str(full / "keep.png"))
    assert proc.returncode == 2 and "is a file; choose a folder" in proc.stderr
    proc = in_process(capfd, "sample", "--workdir", workdir, "--npz-float")
    assert proc.returncode == 2 and "--npz-float adds the float images" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
