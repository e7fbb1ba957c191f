"""bench/torch_nets.py, the PyTorch port bench/compare.py --preset times, computes what gan_jax's step
computes: on the same (perturbed) weights and inputs, G's and D's outputs, D's objective and penalties,
G's loss, and every gradient agree to 1e-5 (relative to the largest value of each). Skipped without torch."""

from __future__ import annotations

import dataclasses
import os
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

torch = pytest.importorskip("torch")
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "bench"))
from torch_nets import TorchGAN, count, nets, to_nchw  # noqa: E402

from gan_jax import build as build_lib  # noqa: E402
from gan_jax import step as step_lib  # noqa: E402
from gan_jax.schedules import step_values  # noqa: E402
from gan_jax.presets import preset  # noqa: E402
from gan_jax.models import count_params  # noqa: E402

TOL = 1e-5


def _close(mine, theirs, what: str) -> None:
    mine, theirs = np.asarray(mine, np.float64), np.asarray(theirs, np.float64)
    scale = max(np.abs(theirs).max(), 1e-12)
    assert np.abs(mine - theirs).max() <= TOL * scale, f"{what}: {np.abs(mine - theirs).max():.3g} of {scale:.3g}"


def _grads_close(module: torch.nn.Module, jax_grads, config, network: str) -> None:
    """module's .grad against gan_jax's gradient tree, loaded into a fresh port of the same network."""
    twin = nets(config)[0 if network == "g" else 1]
    twin.load(jax_grads)
    pairs = [(a.grad.numpy(), b.detach().numpy(), name) for (name, a), (_, b) in
             zip(module.named_parameters(), twin.named_parameters())]
    scale = max(np.abs(b).max() for _, b, _ in pairs)
    for a, b, name in pairs:
        assert np.abs(a - b).max() <= TOL * scale, f"{network} gradient of {name}: {np.abs(a - b).max():.3g} of {scale:.3g}"


NARROW = {"dcgan": {"dcgan_widths": (32, 16, 8)}, "r3gan": {"r3gan_widths": (16, 8, 8)}}
"""Each preset's networks at narrow widths: the same code as at full size (where bench/compare.py times the port),
in a fraction of the time (the full-size r3gan case took 53 s, dcgan 26 s; AMD EPYC family 25 model 17)."""


@pytest.mark.parametrize("name", ["dcgan", "r3gan"])
def test_the_pytorch_port_computes_the_same_step(name):
    config = dataclasses.replace(preset(name), batch_size=8, **NARROW[name])
    state = build_lib.create_train_state(config, jax.random.PRNGKey(0))

    @jax.jit
    def perturbed(params, key):  # zero-initialised layers matter too; one compiled call, not one op per leaf
        leaves, tree = jax.tree_util.tree_flatten(params)
        keys = jax.random.split(key, len(leaves))
        return jax.tree_util.tree_unflatten(tree, [x + 0.05 * jax.random.normal(k, x.shape)
                                                   for x, k in zip(leaves, keys, strict=True)])

    state = state.replace(g=state.g._replace(params=perturbed(state.g.params, jax.random.PRNGKey(7))),
                          d=state.d._replace(params=perturbed(state.d.params, jax.random.PRNGKey(8))))
    p = build_lib.parts(config)
    rng = np.random.default_rng(0)
    real = rng.uniform(-1, 1, (8, *config.image_shape)).astype(np.float32)
    z = rng.standard_normal((8, config.latent_dim)).astype(np.float32)
    port = TorchGAN(config, state)
    assert (count(port.G), count(port.D)) == (count_params(state.g.params), count_params(state.d.params))

    g_vars = {"params": state.g.params, "batch_stats": state.g.stats}
    labels = jnp.zeros((8,), jnp.int32)
    fake, d_out = jax.jit(lambda g_vars, d_params, d_stats, z, real: (
        p.generator.apply(g_vars, z, train=True, mutable=["batch_stats"])[0],
        step_lib.d_apply(p, d_params, d_stats, real, labels, False, None)[0]))(
        g_vars, state.d.params, state.d.stats, z, jnp.asarray(real))
    fake = np.asarray(fake)
    _close(port.G(torch.from_numpy(z)).detach().numpy().transpose(0, 2, 3, 1), fake, "G's images")
    _close(port.D(to_nchw(real)).detach().numpy(), d_out, "D's outputs")

    # D's objective, its terms and its gradient
    batch = {"real": jnp.asarray(real), "fake": jnp.asarray(fake), "real_labels": labels, "fake_labels": labels,
             "penalty_key": jax.random.PRNGKey(3)}
    hyper = step_values(config)

    def d_objective(d_params):
        terms, _, _ = step_lib.d_terms(p, d_params, state.d.stats, batch, ("real", "fake"), jax.random.PRNGKey(4))
        return step_lib.objective(terms, hyper, scale=0.5), terms

    (value, terms), d_grads = jax.jit(jax.value_and_grad(d_objective, has_aux=True))(state.d.params)
    port_value, port_terms = port.d_objective(to_nchw(real), to_nchw(fake))
    port_value.backward()
    _close(port_value.item(), value, "D's objective")
    for side in ("real", "fake"):
        _close(port_terms[side].item(), terms[side], f"D's {side} term")
    if config.penalty != "none":
        assert float(terms["penalty"]) > 0
        _close(port_terms["r1"].item() + port_terms["r2"].item(), terms["penalty"], "R1 + R2")
    _grads_close(port.D, d_grads, config, "d")

    # G's loss through D, and its gradient
    def g_objective(g_params):
        images, _ = p.generator.apply({**g_vars, "params": g_params}, z, train=True, mutable=["batch_stats"])
        out = step_lib.d_apply(p, state.d.params, state.d.stats, images, labels, False, None)[0]
        real_out = step_lib.d_apply(p, state.d.params, state.d.stats, jnp.asarray(real), labels, False,
                                    None)[0] if p.loss.coupled else None
        return p.loss.g(out, real_out)

    g_value, g_grads = jax.jit(jax.value_and_grad(g_objective))(state.g.params)
    port.D.requires_grad_(False)
    port_g = port.g_objective(torch.from_numpy(z), to_nchw(real))
    port_g.backward()
    _close(port_g.item(), g_value, "G's loss")
    _grads_close(port.G, g_grads, config, "g")
