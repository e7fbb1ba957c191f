"""The reference algorithm in idiomatic PyTorch (CPU), for side-by-side timing with gan_jax.

    pip install -e '.[bench]'      # torch==2.13.0 (a CPU wheel on this project's machines)
    python bench/ref_torch.py --batch 128
    python bench/ref_torch.py --batch 128 --compile        # torch.compile'd G and D (inductor, fp32)
    python bench/ref_torch.py --batch 128 --bf16           # CPU autocast to bfloat16 (fp32 master weights)

Same networks, Keras defaults copied (xavier-uniform kernels, zero biases, BatchNorm
momentum 0.8 in Keras terms = 0.2 in PyTorch's, epsilon 1e-3, LeakyReLU 0.2, Adam(2e-4,
0.5, 0.999, eps 1e-7) twice), same schedule: fakes from G in eval mode, a D step on real, a D
step on the same fakes, a G step through D (D's parameters frozen for it). Loss: BCE on
logits. Prints the median ms/iteration and a JSON line. Not imported by the package.
"""

from __future__ import annotations

import argparse
import json

import torch
from timing import median_ms_per_call
from torch import nn


def linear(i: int, o: int) -> nn.Linear:
    layer = nn.Linear(i, o)
    nn.init.xavier_uniform_(layer.weight)
    nn.init.zeros_(layer.bias)
    return layer


def generator(latent: int = 100) -> nn.Sequential:
    layers, width = [], latent
    for o in (256, 512, 1024):
        layers += [linear(width, o), nn.LeakyReLU(0.2), nn.BatchNorm1d(o, eps=1e-3, momentum=0.2)]
        width = o
    return nn.Sequential(*layers, linear(width, 784), nn.Tanh(), nn.Unflatten(1, (1, 28, 28)))


def discriminator() -> nn.Sequential:
    return nn.Sequential(nn.Flatten(), linear(784, 512), nn.LeakyReLU(0.2), linear(512, 256), nn.LeakyReLU(0.2),
                         linear(256, 1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--iters", type=int, default=50, help="Iterations per timed repeat.")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--compile", action="store_true", help="torch.compile both networks (default inductor).")
    parser.add_argument("--bf16", action="store_true", help="Run the networks under CPU autocast to bfloat16.")
    args = parser.parse_args()
    torch.manual_seed(0)
    x_train = torch.rand(60000, 1, 28, 28) * 2 - 1  # timing only: the pixel values do not matter
    G_eager, D_eager = generator(), discriminator()
    opt_g = torch.optim.Adam(G_eager.parameters(), lr=2e-4, betas=(0.5, 0.999), eps=1e-7)
    opt_d = torch.optim.Adam(D_eager.parameters(), lr=2e-4, betas=(0.5, 0.999), eps=1e-7)
    G, D = (torch.compile(G_eager), torch.compile(D_eager)) if args.compile else (G_eager, D_eager)
    autocast = torch.autocast("cpu", dtype=torch.bfloat16, enabled=args.bf16)
    bce = nn.BCEWithLogitsLoss()
    b = args.batch
    ones, zeros = torch.ones(b, 1), torch.zeros(b, 1)

    def iteration():
        imgs = x_train[torch.randint(0, x_train.shape[0], (b,))]
        G.eval()
        with torch.no_grad(), autocast:
            fakes = G(torch.randn(b, 100))
        G.train()
        for images, target in ((imgs, ones), (fakes, zeros)):
            opt_d.zero_grad(set_to_none=True)
            with autocast:
                loss_d = bce(D(images).float(), target)
            loss_d.backward()
            opt_d.step()
        D.requires_grad_(False)
        opt_g.zero_grad(set_to_none=True)
        with autocast:
            loss_g = bce(D(G(torch.randn(b, 100))).float(), ones)
        loss_g.backward()
        opt_g.step()
        D.requires_grad_(True)
        return loss_d, loss_g

    ms = median_ms_per_call(iteration, args.iters, args.repeats, warmup=10 if args.compile else 5)
    impl = "pytorch" + ("_compile" if args.compile else "") + ("_bf16" if args.bf16 else "")
    print(f"{impl} {torch.__version__}, {torch.get_num_threads()} threads, batch {b}: {ms:.2f} ms/iteration")
    print("JSON " + json.dumps({"impl": impl, "batch": b, "ms_per_iteration": ms, "it_per_s": 1e3 / ms,
                                "version": torch.__version__}))


if __name__ == "__main__":
    main()
