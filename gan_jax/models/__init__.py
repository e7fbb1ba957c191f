"""The networks, one file per architecture, and `ARCHITECTURES`, the dict `--arch` names.

  layers.py   what they share: float32-accumulating matmuls, label embeddings, D's normalizations and head
  dense.py    the reference's MLPs (Keras defaults)
  dcgan.py    the InfoGAN-style conv nets of Lucic et al. (2018)
  r3gan.py    R3GAN's normalization-free ResNets (Huang et al. 2024), scaled down

An architecture is an `Architecture` entry: `build(config) -> (generator, discriminator)`, `check(config)`
(UserError for a setting it cannot build, e.g. an image shape), `fused_on_cpu` (whether a chunk of
iterations runs inside one jitted lax.fori_loop on the CPU; XLA:CPU runs convolutions several times slower
inside a while loop, so the conv nets run one jitted call per iteration there, with the same numbers), and what
its tests need: `example` (config overrides that build it) and `params` (G's and D's parameter counts there).
tests/test_models.py builds every entry so and checks the network contract and the counts.

The network contract: a generator maps noise float32 (B, latent_dim) to images float32 (B, *image_shape)
and takes `train` (batch or moving statistics); a discriminator maps images to outputs float32 (B,) and takes
`update_stats`. Both hold 'params' and may hold 'batch_stats' (any state that changes in training), nothing
else; under --condition both take `labels` (an 'acgan' D returns its class logits too).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import flax.linen as nn
import jax

from gan_jax.models import dcgan, dense, r3gan


class Architecture(NamedTuple):
    """One `--arch` entry."""

    build: Callable[[Any], tuple[nn.Module, nn.Module]]
    """config -> (generator, discriminator)."""
    check: Callable[[Any], None] = lambda config: None
    """config -> None, or UserError naming a setting this architecture cannot build and its fix."""
    fused_on_cpu: bool = False
    """Whether a chunk of iterations runs fused (one lax.fori_loop) on the CPU; other backends always fuse."""
    example: tuple[tuple[str, Any], ...] | None = None
    """Config overrides (of the reference's Config()) that build this architecture on Fashion-MNIST, as (field,
    value) pairs (an entry is hashable: it keys caches); the tests build every entry with them (and fail
    without them)."""
    params: tuple[int, int] | None = None
    """G's and D's parameter counts under `example` (the tests check them)."""
    reads: tuple[str, ...] | None = None
    """The config fields its build reads beyond those every network reads (image shape, conditioning, latent
    size, compute dtype); a field another entry reads and this one does not is refused when set to anything but
    its default (Config.validate). None: not declared, nothing refused."""


ARCHITECTURES: dict[str, Architecture] = {
    name: Architecture(module.build, module.check, module.FUSED_ON_CPU, tuple(module.EXAMPLE.items()),
                       module.PARAMS, module.READS)
    for name, module in (("dense", dense), ("dcgan", dcgan), ("r3gan", r3gan))
}
"""`--arch` name -> Architecture."""


def count_params(tree: Any) -> int:
    """Total number of scalars in a pytree of arrays."""
    return sum(int(x.size) for x in jax.tree_util.tree_leaves(tree))
