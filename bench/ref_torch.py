"""The reference algorithm in idiomatic PyTorch (CPU), for side-by-side timing with gan_jax.

    pip install -e '.[bench]'      # torch==2.13.0 (a CPU wheel on this project's machines)
    python bench/ref_torch.py --batch 128

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
    args = parser.parse_args()
    torch.manual_seed(0)
    x_train = torch.rand(60000, 1, 28, 28) * 2 - 1  # timing only: the pixel values do not matter
    G, D = generator(), discriminator()
    opt_g = torch.optim.Adam(G.parameters(), lr=2e-4, betas=(0.5, 0.999), eps=1e-7)
    opt_d = torch.optim.Adam(D.parameters(), lr=2e-4, betas=(0.5, 0.999), eps=1e-7)
    bce = nn.BCEWithLogitsLoss()
    b = args.batch
    ones, zeros = torch.ones(b, 1), torch.zeros(b, 1)

    def iteration():
        imgs = x_train[torch.randint(0, x_train.shape[0], (b,))]
        G.eval()
        with torch.no_grad():
            fakes = G(torch.randn(b, 100))
        G.train()
        for images, target in ((imgs, ones), (fakes, zeros)):
            opt_d.zero_grad(set_to_none=True)
            loss_d = bce(D(images), target)
            loss_d.backward()
            opt_d.step()
        D.requires_grad_(False)
        opt_g.zero_grad(set_to_none=True)
        loss_g = bce(D(G(torch.randn(b, 100))), ones)
        loss_g.backward()
        opt_g.step()
        D.requires_grad_(True)
        return loss_d, loss_g

    ms = median_ms_per_call(iteration, args.iters, args.repeats, warmup=5)
    print(f"pytorch {torch.__version__}, {torch.get_num_threads()} threads, batch {b}: {ms:.2f} ms/iteration")
    print("JSON " + json.dumps({"impl": "pytorch", "batch": b, "ms_per_iteration": ms, "it_per_s": 1e3 / ms,
                                "version": torch.__version__}))


if __name__ == "__main__":
    main()
