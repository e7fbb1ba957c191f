"""bench/step.py counts the reference's work correctly (the roofline figures depend on it)."""

import dataclasses
import importlib.util
import sys

from conftest import REPO
from gan_jax.config import Config


def _load_step():
    spec = importlib.util.spec_from_file_location("bench_step", REPO / "bench" / "step.py")
    module = importlib.util.module_from_spec(spec)
    argv, sys.argv = sys.argv, ["step.py"]
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
    assert step.flops_per_iteration(Config()) == 2 * 128 * macs  # 2.398 GFLOP, the "2.40"
    assert step.flops_per_iteration(dataclasses.replace(Config(), d_update="joint")) == 2 * 128 * macs
    shapes = step.iteration_matmuls(Config())
    assert len(shapes) == 37 and sum(2 * m * k * n for m, k, n in shapes) == 2 * 128 * macs
