"""`python -m gan_jax.metrics.train_classifier`: make a dataset's metrics classifier.

Trains `Classifier` on the dataset's train split (Adam, cosine decay; random horizontal flips
where the classes are mirror-symmetric: Fashion-MNIST, CIFAR-10), reports accuracy on its test
split, and writes `classifier.msgpack` and `classifier.json` (accuracy, shapes, epochs, seed,
wall time) into --out (default: where gan_jax looks for it: the package folder for
fashion_mnist, whose copy is committed; `<data_dir>/<name>/gan_jax_classifier` otherwise).
Deterministic for a given seed on a given machine.

    python -m gan_jax.metrics.train_classifier --dataset mnist --epochs 5
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import serialization

from gan_jax import config as config_lib

from gan_jax import flags
from gan_jax import input_pipeline
from gan_jax.errors import UserError, run_cli
from gan_jax.metrics.classifier import Classifier, features_and_probs, init_variables, weights_dir

MIRROR_SYMMETRIC = ("fashion_mnist", "cifar10")
"""Datasets whose classes survive a horizontal flip (digits and letters do not): flipped by default."""


def train(train_set: input_pipeline.Dataset, epochs: int, batch: int, seed: int, lr: float,
          flip: bool = True) -> dict:
    """Trained classifier variables after `epochs` passes over `train_set` (shuffled each epoch;
    each image flipped left-right with probability 1/2 when `flip`)."""
    num_classes = len(train_set.class_names)
    variables = init_variables(seed, train_set.image_shape, num_classes)
    steps_per_epoch = len(train_set) // batch
    tx = optax.adam(optax.cosine_decay_schedule(lr, epochs * steps_per_epoch))
    opt_state = tx.init(variables["params"])

    @jax.jit
    def step(variables, opt_state, images, labels, key):
        k_flip, k_drop = jax.random.split(key)
        if flip:
            flipped = jax.random.bernoulli(k_flip, 0.5, (images.shape[0], 1, 1, 1))
            images = jnp.where(flipped, images[:, :, ::-1], images)

        def loss_fn(params):
            (_, logits), new = Classifier(num_classes).apply({"params": params, "batch_stats": variables["batch_stats"]},
                                                  images, train=True, rngs={"dropout": k_drop},
                                                  mutable=["batch_stats"])
            return optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean(), new["batch_stats"]

        (loss, stats), grads = jax.value_and_grad(loss_fn, has_aux=True)(variables["params"])
        updates, opt_state = tx.update(grads, opt_state, variables["params"])
        return {"params": optax.apply_updates(variables["params"], updates), "batch_stats": stats}, opt_state, loss

    key = jax.random.PRNGKey(seed)
    rng = np.random.default_rng(seed)
    for epoch in range(epochs):
        order = rng.permutation(len(train_set))
        t, losses = time.perf_counter(), []
        for i in range(steps_per_epoch):
            idx = order[i * batch:(i + 1) * batch]
            variables, opt_state, loss = step(variables, opt_state, train_set.normalized(idx), train_set.labels[idx],
                                              jax.random.fold_in(key, epoch * steps_per_epoch + i))
            if i % 100 == 0:
                losses.append(float(loss))
        print(f"epoch {epoch + 1}/{epochs}: loss {np.mean(losses):.4f} ({time.perf_counter() - t:.0f} s)",
              file=sys.stderr, flush=True)
    return variables


def accuracy(variables: dict, data: input_pipeline.Dataset) -> float:
    """Fraction of `data` the classifier labels correctly."""
    _, probs = features_and_probs(data.normalized(), variables=variables)
    return float(np.mean(probs.argmax(1) == data.labels))


def main(argv: list[str] | None = None) -> int:
    parser = flags.OneLineParser(prog="python -m gan_jax.metrics.train_classifier", description=__doc__)
    parser.add_argument("--dataset", default="fashion_mnist", metavar="NAME",
                        help="tfds image-classification dataset, as gan_jax.train's --dataset.")
    parser.add_argument("--flip", action=argparse.BooleanOptionalAction, default=None,
                        help=f"Random left-right flips (default: on for {', '.join(MIRROR_SYMMETRIC)}).")
    parser.add_argument("--epochs", type=int, default=14)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--learning-rate", type=float, default=2e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=None, help="Folder for classifier.msgpack and classifier.json "
                                                     "(default: where gan_jax looks for the dataset's classifier).")
    parser.add_argument("--manual-dir", default=None, help="As for gan_jax.train (default: $GAN_JAX_MANUAL_DIR).")
    parser.add_argument("--data-dir", default=None, help="As for gan_jax.train (default: $GAN_JAX_DATA_DIR).")
    args = parser.parse_args(argv)
    cfg = config_lib.Config(manual_dir=args.manual_dir, data_dir=args.data_dir)
    if args.epochs < 1 or args.batch_size < 1:
        raise UserError("--epochs and --batch-size must be positive integers")
    train_set = input_pipeline.load(args.dataset, "train", cfg.resolved_manual_dir(), cfg.resolved_data_dir())
    test_set = input_pipeline.load(args.dataset, "test", cfg.resolved_manual_dir(), cfg.resolved_data_dir())
    out = args.out or weights_dir(args.dataset, cfg.resolved_data_dir())
    flip = args.flip if args.flip is not None else args.dataset in MIRROR_SYMMETRIC
    t = time.perf_counter()
    variables = train(train_set, args.epochs, min(args.batch_size, len(train_set)), args.seed, args.learning_rate, flip)
    wall = time.perf_counter() - t
    acc = accuracy(variables, test_set)
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "classifier.msgpack"), "wb") as f:
        f.write(serialization.to_bytes(variables))
    record = {"dataset": args.dataset, "image_shape": list(train_set.image_shape),
              "num_classes": len(train_set.class_names), "flip": flip,
              "test_accuracy": acc, "train_accuracy": accuracy(variables, train_set), "epochs": args.epochs,
              "batch_size": args.batch_size, "learning_rate": args.learning_rate, "seed": args.seed,
              "train_seconds": round(wall, 1), "jax": jax.__version__, "device": jax.devices()[0].device_kind,
              "command": "python -m gan_jax.metrics.train_classifier " + " ".join(argv if argv is not None else sys.argv[1:])}
    with open(os.path.join(out, "classifier.json"), "w") as f:
        json.dump(record, f, indent=2)
    print(f"test accuracy {100 * acc:.2f}% after {args.epochs} epochs ({wall:.0f} s); wrote {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    run_cli("python -m gan_jax.metrics.train_classifier", main)
