"""Data parallelism through jax.sharding: 8 (forced) CPU devices give the 1-device results.

The batch is sharded over a ('data',) mesh, parameters and BatchNorm statistics replicated;
BatchNorm statistics are over the global batch because the math is written globally and
XLA's partitioner inserts the collectives. Runs in a subprocess because the device count is
fixed when JAX starts.
"""

import os
import subprocess
import sys
import textwrap

import pytest

from conftest import REPO

SCRIPT = textwrap.dedent("""
    import dataclasses, json, sys, tempfile
    import jax, numpy as np
    assert len(jax.devices()) == 8, jax.devices()
    from gan_jax.config import Config
    from gan_jax.input_pipeline import synthetic_dataset
    from gan_jax.loop import train_and_evaluate
    config = dataclasses.replace(Config(), iterations=6, batch_size=16, latent_dim=8, g_hidden=(16, 32),
                                 d_hidden=(32, 16), log_every=1, sample_every=5, checkpoint_every=0, progress=False)
    data = synthetic_dataset(64, seed=1)
    out = {}
    for n in (1, 8):
        with tempfile.TemporaryDirectory() as d:
            state = train_and_evaluate(dataclasses.replace(config, devices=n), d + "/run", dataset=data)
            out[n] = state
            shardings = {str(x.sharding.spec) for x in jax.tree_util.tree_leaves(state)}
            assert shardings == {"P()"}, shardings  # replicated
            assert len(state.g.params["Dense_0"]["kernel"].sharding.device_set) == n
            metrics = [json.loads(l) for l in open(d + "/run/metrics.jsonl")]
            out[f"m{n}"] = metrics
    # Each leaf's 1- vs 8-device difference relative to how far it moved from the initial state in the 6 iterations
    # (weights ~1e-3, Adam's second moments ~1e-7: an absolute tolerance would be vacuous for the small ones).
    from gan_jax.build import create_train_state
    initial = create_train_state(config, jax.random.PRNGKey(config.seed))
    worst = 0.0
    for x0, a, b in zip(jax.tree_util.tree_leaves(initial), jax.tree_util.tree_leaves(out[1]),
                        jax.tree_util.tree_leaves(out[8]), strict=True):
        x0, a, b = (np.asarray(x, np.float64) for x in (x0, a, b))
        if not a.size:
            continue
        moved, diff = float(np.max(np.abs(a - x0))), float(np.max(np.abs(a - b)))
        assert moved > 0 or diff == 0, "a leaf that did not move on 1 device moved on 8"
        worst = max(worst, diff / moved if moved > 0 else 0.0)
    assert len(out["m1"]) == len(out["m8"]) == 6
    for ma, mb in zip(out["m1"], out["m8"], strict=True):
        for k in ma:
            assert abs(ma[k] - mb[k]) < 1e-4, (k, ma[k], mb[k])
    # The batch really is split: the 8-device program reduces gradients and BatchNorm moments across devices.
    from jax.sharding import NamedSharding, PartitionSpec as P
    from gan_jax.chunk import make_train_chunk
    from gan_jax.loop import make_mesh
    from gan_jax.build import create_train_state
    c8 = dataclasses.replace(config, devices=8)
    mesh = make_mesh(c8)
    rep = NamedSharding(mesh, P())
    state = jax.device_put(create_train_state(c8, jax.random.PRNGKey(0)), rep)
    hlo = make_train_chunk(c8, mesh).lower(state, jax.device_put(data.images, rep), np.int32(1)).compile().as_text()
    assert hlo.count("all-reduce") >= 4, hlo.count("all-reduce")
    # Each device gathers only its own rows of the batch (16 / 8 = 2) from the resident images:
    # with several processes, each process computes its share, not the whole batch.
    gathers = [l.split(" = ")[1].split("{")[0] for l in hlo.splitlines() if " gather(" in l and "28,28,1}" in l]
    assert gathers and all(g.startswith("u8[2,") for g in gathers), gathers  # uint8 pixels, 2 rows
    print("MAXDIFF", worst)
""")


@pytest.mark.integration
def test_eight_devices_match_one_device():
    env = {"XLA_FLAGS": "--xla_force_host_platform_device_count=8", "JAX_PLATFORMS": "cpu", "PATH": "/usr/bin:/bin",
           **{k: v for k, v in os.environ.items() if k.startswith("JAX_") and "CACHE" in k}}  # the session's cache
    proc = subprocess.run([sys.executable, "-c", SCRIPT], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    worst = float(proc.stdout.split("MAXDIFF")[1])
    assert worst < 1e-3, worst  # same math, different reduction order across devices: < 0.1% of each leaf's move
