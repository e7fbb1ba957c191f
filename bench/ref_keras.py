"""The reference program's training loop in TensorFlow/Keras 3, for side-by-side timing.

    python bench/ref_keras.py --batch 128 --generate predict            # as the blog post
    python bench/ref_keras.py --batch 128 --generate predict_on_batch   # its faster sibling

The blog post's models and loop, verbatim in substance (Sequential dense GAN, BCE, two Adam
optimizers, `train_on_batch` twice for D and once for the combined model). Keras 3 fixes a
model's trainable weights when its train function is built, so the post's single
`discriminator.trainable = False` would leave D untrained: this script toggles
`discriminator.trainable` around each update, which is what the post intends. Prints the
median ms/iteration and a JSON line. Not imported by the package.
"""

from __future__ import annotations

import argparse
import json
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from tensorflow import keras  # noqa: E402
from tensorflow.keras import layers  # noqa: E402
from timing import median_ms_per_call  # noqa: E402


def build(latent: int = 100):
    g = keras.Sequential([keras.Input((latent,))])
    for width in (256, 512, 1024):
        g.add(layers.Dense(width))
        g.add(layers.LeakyReLU(negative_slope=0.2))
        g.add(layers.BatchNormalization(momentum=0.8))
    g.add(layers.Dense(784, activation="tanh"))
    g.add(layers.Reshape((28, 28, 1)))
    d = keras.Sequential([keras.Input((28, 28, 1)), layers.Flatten(), layers.Dense(512), layers.LeakyReLU(negative_slope=0.2),
                          layers.Dense(256), layers.LeakyReLU(negative_slope=0.2), layers.Dense(1, activation="sigmoid")])
    d.compile(loss="binary_crossentropy", optimizer=keras.optimizers.Adam(0.0002, 0.5), metrics=["accuracy"])
    d.trainable = False
    z = keras.Input((latent,))
    combined = keras.Model(z, d(g(z)))
    combined.compile(loss="binary_crossentropy", optimizer=keras.optimizers.Adam(0.0002, 0.5))
    return g, d, combined


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--generate", default="predict", choices=("predict", "predict_on_batch"))
    parser.add_argument("--iters", type=int, default=20, help="Iterations per timed repeat.")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    tf.config.set_visible_devices([], "GPU")
    rng = np.random.default_rng(0)
    x_train = rng.uniform(-1, 1, (60000, 28, 28, 1)).astype(np.float32)  # timing only
    g, d, combined = build()
    b = args.batch
    ones, zeros = np.ones((b, 1)), np.zeros((b, 1))
    generate = g.predict if args.generate == "predict" else g.predict_on_batch

    def iteration():
        imgs = x_train[rng.integers(0, x_train.shape[0], b)]
        noise = rng.normal(0, 1, (b, 100))
        gen_imgs = generate(noise, verbose=0) if args.generate == "predict" else generate(noise)
        d.trainable = True
        d_loss_real = d.train_on_batch(imgs, ones)
        d_loss_fake = d.train_on_batch(gen_imgs, zeros)
        d.trainable = False
        g_loss = combined.train_on_batch(rng.normal(0, 1, (b, 100)), ones)
        return d_loss_real, d_loss_fake, g_loss

    ms = median_ms_per_call(iteration, args.iters, args.repeats, warmup=3)
    print(f"keras {keras.__version__} (tf {tf.__version__}), {args.generate}, batch {b}: {ms:.2f} ms/iteration")
    print("JSON " + json.dumps({"impl": f"keras_{args.generate}", "batch": b, "ms_per_iteration": ms,
                                "it_per_s": 1e3 / ms, "version": keras.__version__}))


if __name__ == "__main__":
    main()
