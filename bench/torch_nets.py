"""gan_jax's conv presets in PyTorch: the same networks, the same update, weights loaded from gan_jax.

    from torch_nets import TorchGAN
    gan = TorchGAN(config, jax_state)        # nets and Adam states from a gan_jax TrainState
    gan.iteration(real, z_fake, z_gen)       # one training iteration, eager (or gan.compiled_iteration)

For the side-by-side timing in bench/compare.py --preset and the equality check in
tests/test_torch_port.py (outputs, losses, penalties and every gradient against gan_jax on the same
weights). Not imported by the package.

- dcgan: InfoGAN's conv nets (models/dcgan.py). gan_jax's ConvTranspose4x4s2
  is PyTorch's ConvTranspose2d(4, stride 2, padding 1) on the spatially flipped kernel; D flattens in
  gan_jax's (H, W, C) order. Update (the preset: joint, fake_bn train, ns loss): fakes from G in train
  mode, one D update on the mean of the BCE terms, one G update through D.
- r3gan: the scaled-down R3GAN nets (models/r3gan.py): 1x1 convs, grouped 3x3
  convs (groups of 16 channels), biased leaky ReLUs, bilinear resampling (antialiased when shrinking, as
  jax.image.resize). Update (the preset: joint, rpgan, R1 + R2 with one weight, G EMA): R1 and R2 taken
  from the forward pass D already made (`torch.autograd.grad(..., create_graph=True)`, as R3GAN's code),
  D's objective 0.5 * (pair loss + weight * (R1 + R2)), then G's RpGAN loss with D's outputs on the reals.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


def _t(x) -> torch.Tensor:
    return torch.from_numpy(np.array(x, dtype=np.float32))


# --- dcgan -------------------------------------------------------------------------------------------

class DCGANG(nn.Module):
    def __init__(self, latent: int, image_shape, bn_momentum: float, bn_epsilon: float, widths=(1024, 128, 64)):
        super().__init__()
        h, w, c = image_shape
        self.h, self.w = h // 4, w // 4
        dense, self.coarse, fine = widths
        m = 1.0 - bn_momentum  # Keras' momentum 0.8 is PyTorch's 0.2
        n = self.h * self.w * self.coarse
        self.fc1, self.bn1 = nn.Linear(latent, dense), nn.BatchNorm1d(dense, bn_epsilon, m)
        self.fc2, self.bn2 = nn.Linear(dense, n), nn.BatchNorm1d(n, bn_epsilon, m)
        self.up1, self.bn3 = nn.ConvTranspose2d(self.coarse, fine, 4, 2, 1), nn.BatchNorm2d(fine, bn_epsilon, m)
        self.up2 = nn.ConvTranspose2d(fine, c, 4, 2, 1)

    def forward(self, z):
        x = F.relu(self.bn1(self.fc1(z)))
        x = F.relu(self.bn2(self.fc2(x)))
        x = x.view(-1, self.h, self.w, self.coarse).permute(0, 3, 1, 2)  # gan_jax's (H, W, C) feature order
        x = F.relu(self.bn3(self.up1(x)))
        return torch.tanh(self.up2(x))

    def load(self, p):
        _linear(self.fc1, p["Dense_0"]), _linear(self.fc2, p["Dense_1"])
        for bn, name in ((self.bn1, "BatchNorm_0"), (self.bn2, "BatchNorm_1"), (self.bn3, "BatchNorm_2")):
            _bn(bn, p[name])
        n = self.h * self.w * self.coarse  # bn2 and fc2's outputs are in gan_jax's (H, W, C) order already
        assert self.fc2.out_features == n
        for up, name in ((self.up1, "ConvTranspose4x4s2_0"), (self.up2, "ConvTranspose4x4s2_1")):
            kernel = np.asarray(p[name]["kernel"])[::-1, ::-1]  # (4, 4, in, out), flipped
            up.weight.data = _t(kernel.transpose(2, 3, 0, 1))
            up.bias.data = _t(p[name]["bias"])


class DCGAND(nn.Module):
    def __init__(self, image_shape, widths=(1024, 128, 64)):
        super().__init__()
        h, w, c = image_shape
        dense, coarse, fine = widths
        self.conv1, self.conv2 = nn.Conv2d(c, fine, 4, 2, 1), nn.Conv2d(fine, coarse, 4, 2, 1)
        self.bn2 = nn.BatchNorm2d(coarse, 1e-5, 0.1)
        self.fc1, self.bn3 = nn.Linear(h // 4 * w // 4 * coarse, dense), nn.BatchNorm1d(dense, 1e-5, 0.1)
        self.fc2 = nn.Linear(dense, 1)

    def forward(self, x):
        x = F.leaky_relu(self.conv1(x), 0.2)
        x = F.leaky_relu(self.bn2(self.conv2(x)), 0.2)
        x = x.permute(0, 2, 3, 1).flatten(1)  # gan_jax flattens (H, W, C)
        x = F.leaky_relu(self.bn3(self.fc1(x)), 0.2)
        return self.fc2(x)[:, 0]

    def load(self, p):
        for conv, name in ((self.conv1, "Conv_0"), (self.conv2, "Conv_1")):
            conv.weight.data = _t(np.asarray(p[name]["kernel"]).transpose(3, 2, 0, 1))
            conv.bias.data = _t(p[name]["bias"])
        _linear(self.fc1, p["Dense_0"]), _linear(self.fc2, p["Dense_1"])
        _bn(self.bn2, p["BatchNorm_0"]), _bn(self.bn3, p["BatchNorm_1"])


# --- r3gan -------------------------------------------------------------------------------------------

class Biased(nn.Module):
    """R3GAN's biased leaky ReLU: leaky_relu(x + bias, 0.2), bias per channel."""

    def __init__(self, c: int):
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(c))

    def forward(self, x):
        return F.leaky_relu(x + self.bias.view(1, -1, 1, 1), 0.2)


class R3Block(nn.Module):
    def __init__(self, c: int, expansion: int, group_size: int):
        super().__init__()
        wide = c * expansion
        self.expand = nn.Conv2d(c, wide, 1, bias=False)
        self.act1, self.act2 = Biased(wide), Biased(wide)
        self.grouped = nn.Conv2d(wide, wide, 3, padding=1, groups=wide // group_size, bias=False)
        self.contract = nn.Conv2d(wide, c, 1, bias=False)

    def forward(self, x):
        return x + self.contract(self.act2(self.grouped(self.act1(self.expand(x)))))

    def load(self, p):
        _pointwise(self.expand, p["Dense_0"]), _pointwise(self.contract, p["Dense_1"])
        self.grouped.weight.data = _t(np.asarray(p["GroupedConv3x3_0"]["kernel"]).transpose(3, 2, 0, 1))
        self.act1.bias.data, self.act2.bias.data = _t(p["_BiasedLeakyReLU_0"]["bias"]), _t(p["_BiasedLeakyReLU_1"]["bias"])


def _resize(x, h: int, w: int):
    """jax.image.resize(..., 'bilinear'): half-pixel centres, antialiased when shrinking."""
    return F.interpolate(x, size=(h, w), mode="bilinear", align_corners=False, antialias=h < x.shape[2])


class R3G(nn.Module):
    def __init__(self, latent: int, image_shape, widths, blocks: int, expansion: int, group_size: int):
        super().__init__()
        h, w, c = image_shape
        self.h0, self.w0 = h // 2 ** (len(widths) - 1), w // 2 ** (len(widths) - 1)
        self.widths, self.blocks = widths, blocks
        self.fc = nn.Linear(latent, widths[0], bias=False)
        self.basis = nn.Parameter(torch.zeros(widths[0], self.h0, self.w0))
        self.trans = nn.ModuleList(nn.Conv2d(a, b, 1, bias=False) for a, b in zip(widths, widths[1:]) if a != b)
        self.stages = nn.ModuleList(nn.Sequential(*(R3Block(wd, expansion, group_size) for _ in range(blocks)))
                                    for wd in widths)
        self.out = nn.Conv2d(widths[-1], c, 1, bias=False)

    def forward(self, z):
        x = self.basis[None] * self.fc(z)[:, :, None, None]
        trans = iter(self.trans)
        for i, stage in enumerate(self.stages):
            if i:
                x = next(trans)(x) if self.widths[i] != self.widths[i - 1] else x
                x = _resize(x, x.shape[2] * 2, x.shape[3] * 2)
            x = stage(x)
        return self.out(x)

    def load(self, p):
        dense = iter(sorted((k for k in p if k.startswith("Dense_")), key=lambda k: int(k.split("_")[1])))
        self.fc.weight.data = _t(np.asarray(p[next(dense)]["kernel"]).T)
        for t in self.trans:
            _pointwise(t, p[next(dense)])
        _pointwise(self.out, p[next(dense)])
        self.basis.data = _t(np.asarray(p["basis"]).transpose(2, 0, 1))
        for i, block in enumerate(b for stage in self.stages for b in stage):
            block.load(p[f"_R3Block_{i}"])


class R3D(nn.Module):
    def __init__(self, image_shape, widths, blocks: int, expansion: int, group_size: int):
        super().__init__()
        h, w, c = image_shape
        self.widths = widths[::-1]  # finest first
        self.inp = nn.Conv2d(c, self.widths[0], 1, bias=False)
        self.stages = nn.ModuleList(nn.Sequential(*(R3Block(wd, expansion, group_size) for _ in range(blocks)))
                                    for wd in self.widths)
        self.trans = nn.ModuleList(nn.Conv2d(a, b, 1, bias=False) for a, b in zip(self.widths, self.widths[1:]) if a != b)
        hk, wk = h // 2 ** (len(widths) - 1), w // 2 ** (len(widths) - 1)
        self.basis = nn.Parameter(torch.zeros(self.widths[-1], hk, wk))
        self.fc = nn.Linear(self.widths[-1], 1, bias=False)

    def forward(self, x):
        x = self.inp(x)
        trans = iter(self.trans)
        for i, stage in enumerate(self.stages):
            x = stage(x)
            if i + 1 < len(self.stages):
                x = _resize(x, x.shape[2] // 2, x.shape[3] // 2)
                x = next(trans)(x) if self.widths[i + 1] != self.widths[i] else x
        features = torch.einsum("bchw,chw->bc", x, self.basis)
        return self.fc(features)[:, 0]

    def load(self, p):
        dense = iter(sorted((k for k in p if k.startswith("Dense_")), key=lambda k: int(k.split("_")[1])))
        _pointwise(self.inp, p[next(dense)])
        for t in self.trans:
            _pointwise(t, p[next(dense)])
        self.fc.weight.data = _t(np.asarray(p[next(dense)]["kernel"]).T)
        self.basis.data = _t(np.asarray(p["basis"])[:, :, 0].transpose(2, 0, 1))
        for i, block in enumerate(b for stage in self.stages for b in stage):
            block.load(p[f"_R3Block_{i}"])


def _linear(layer: nn.Linear, p) -> None:
    layer.weight.data = _t(np.asarray(p["kernel"]).T)
    if layer.bias is not None:
        layer.bias.data = _t(p["bias"])


def _pointwise(conv: nn.Conv2d, p) -> None:
    conv.weight.data = _t(np.asarray(p["kernel"]).T[:, :, None, None])


def _bn(bn, p) -> None:
    bn.weight.data, bn.bias.data = _t(p["scale"]), _t(p["bias"])


# --- the update ---------------------------------------------------------------------------------------

def nets(config):
    """(G, D) in PyTorch for a gan_jax Config of arch dcgan or r3gan (their preset's settings)."""
    from gan_jax.models import r3gan as models  # noqa: PLC0415

    if config.arch == "dcgan":
        assert config.condition == "none" and config.d_norm == "batch" and config.d_dropout == 0
        widths = tuple(config.dcgan_widths)
        return (DCGANG(config.latent_dim, config.image_shape, config.bn_momentum, config.bn_epsilon, widths),
                DCGAND(config.image_shape, widths))
    if config.arch == "r3gan":
        assert config.condition == "none"
        stages = models.r3gan_stages(config.image_shape)
        widths = models.stage_widths(config.r3gan_widths, stages)
        shape = (config.r3gan_blocks, models.R3GAN_EXPANSION, models.R3GAN_GROUP_SIZE)
        return R3G(config.latent_dim, config.image_shape, widths, *shape), R3D(config.image_shape, widths, *shape)
    raise ValueError(f"no PyTorch port of --arch {config.arch}")


def to_nchw(images: np.ndarray) -> torch.Tensor:
    """gan_jax's (B, H, W, C) images as PyTorch's (B, C, H, W)."""
    return torch.from_numpy(np.array(np.asarray(images, np.float32).transpose(0, 3, 1, 2), order="C"))


class TorchGAN:
    """A preset's nets, Adams and iteration in PyTorch, from a gan_jax config and TrainState."""

    def __init__(self, config, state):
        assert config.d_update == "joint" and config.d_steps == 1 and config.d_clip == 0 and config.augment == "none"
        self.config = config
        self.G, self.D = nets(config)
        self.G.load(state.g.params), self.D.load(state.d.params)
        (g_lr, g_b1, g_b2), (d_lr, d_b1, d_b2) = config.adam("g"), config.adam("d")
        self.opt_g = torch.optim.Adam(self.G.parameters(), g_lr, (g_b1, g_b2), config.adam_eps, foreach=True)
        self.opt_d = torch.optim.Adam(self.D.parameters(), d_lr, (d_b1, d_b2), config.adam_eps, foreach=True)
        self.penalties = tuple(config.penalty.split(",")) if config.penalty != "none" else ()
        assert set(self.penalties) <= {"r1", "r2"} and config.loss in ("ns", "rpgan")
        self.ema = [p.detach().clone() for p in self.G.parameters()] if config.g_ema > 0 else None
        self._compiled_d = None

    # the terms, as gan_jax's step computes them
    def d_losses(self, real_out, fake_out):
        if self.config.loss == "ns":
            return (F.binary_cross_entropy_with_logits(real_out, torch.ones_like(real_out)),
                    F.binary_cross_entropy_with_logits(fake_out, torch.zeros_like(fake_out)))
        pair = F.softplus(fake_out - real_out).mean()
        return 0.5 * pair, 0.5 * pair

    def g_loss(self, fake_out, real_out):
        if self.config.loss == "ns":
            return F.binary_cross_entropy_with_logits(fake_out, torch.ones_like(fake_out))
        return F.softplus(real_out - fake_out).mean()

    def d_objective(self, real, fake):
        """-> (objective, {name: value}): 0.5 * (real term + fake term + weight * (R1 + R2)), the
        penalties from the gradients of the same forward passes."""
        needs = {"real": "r1" in self.penalties, "fake": "r2" in self.penalties}
        outs, terms = {}, {}
        for side, x in (("real", real), ("fake", fake)):
            x = x.detach().requires_grad_(needs[side])
            outs[side] = self.D(x)
            if needs[side]:
                (g,) = torch.autograd.grad(outs[side].sum(), x, create_graph=True)
                terms["r1" if side == "real" else "r2"] = 0.5 * g.square().flatten(1).sum(1).mean()
        terms["real"], terms["fake"] = self.d_losses(outs["real"], outs["fake"])
        total = terms["real"] + terms["fake"]
        if self.penalties:
            total = total + self.config.penalty_weight * sum(terms[p] for p in self.penalties)
        return 0.5 * total, terms

    def g_objective(self, z, real):
        fake_out = self.D(self.G(z))
        real_out = self.D(real).detach() if self.config.loss == "rpgan" else None
        return self.g_loss(fake_out, real_out)

    def fakes(self, z):
        with torch.no_grad():
            if self.config.fake_bn == "train":
                self.G.train()
                return self.G(z)
            self.G.eval()
            out = self.G(z)
            self.G.train()
            return out

    def iteration(self, real, z_fake, z_gen):
        """One training iteration, eager: fakes, D's update, G's update (D frozen), G's EMA."""
        fake = self.fakes(z_fake)
        self.opt_d.zero_grad(set_to_none=True)
        d_loss, _ = self.d_objective(real, fake)
        d_loss.backward()
        self.opt_d.step()
        return d_loss.detach(), self._g_update(self.g_objective, z_gen, real)

    def _g_update(self, objective, z_gen, real):
        """G's Adam step on objective(z_gen, real) through the frozen D, then G's EMA; -> G's loss."""
        self.D.requires_grad_(False)
        self.opt_g.zero_grad(set_to_none=True)
        g_loss = objective(z_gen, real)
        g_loss.backward()
        self.opt_g.step()
        self.D.requires_grad_(True)
        if self.ema is not None:
            torch._foreach_lerp_(self.ema, [p.detach() for p in self.G.parameters()], 1.0 - self.config.g_ema)
        return g_loss.detach()

    # torch.compile: autograd's double backward (create_graph=True) does not compile, so the compiled
    # form computes D's objective and its gradient with torch.func (vjp for the input gradients, grad
    # for the parameters) inside one compiled function; G's update is a compiled forward + backward.
    def compiled_iteration(self, real, z_fake, z_gen):
        """One iteration with D's objective + gradient and G's loss compiled by torch.compile (inductor)."""
        if self._compiled_d is None:
            self._compile()
        fake = self.fakes(z_fake)
        if self.penalties:
            d_params = dict(self.D.named_parameters())
            grads, d_loss = self._compiled_d({k: v.detach() for k, v in d_params.items()}, real, fake)
            for k, p in d_params.items():
                p.grad = grads[k]
        else:
            self.opt_d.zero_grad(set_to_none=True)
            d_loss = self._compiled_d_plain(real, fake)
            d_loss.backward()
        self.opt_d.step()
        return d_loss.detach(), self._g_update(self._compiled_g, z_gen, real)

    def _compile(self):
        from torch.func import functional_call, grad_and_value, vjp  # noqa: PLC0415

        D, weight, penalties, losses = self.D, self.config.penalty_weight, self.penalties, self.d_losses

        def objective(params, real, fake):
            d = lambda x: functional_call(D, params, (x,))  # noqa: E731
            outs, total = {}, 0.0
            for side, x, name in (("real", real, "r1"), ("fake", fake, "r2")):
                if name in penalties:
                    outs[side], pullback = vjp(d, x)
                    (g,) = pullback(torch.ones_like(outs[side]))
                    total = total + weight * 0.5 * g.square().flatten(1).sum(1).mean()
                else:
                    outs[side] = d(x)
            real_term, fake_term = losses(outs["real"], outs["fake"])
            return 0.5 * (real_term + fake_term + total)

        self._compiled_d = torch.compile(grad_and_value(objective))
        self._compiled_d_plain = torch.compile(lambda real, fake: 0.5 * sum(losses(self.D(real), self.D(fake))))
        self._compiled_g = torch.compile(self.g_objective)


def count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())

