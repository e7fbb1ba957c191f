"""gan_jax: a pure-JAX GAN trainer, starting as a faithful port of a Keras Fashion-MNIST GAN.

Where things are (each file owns one thing):
  config.py          every tunable, presets, and the command line parser
  input_pipeline.py  Fashion-MNIST through tensorflow-datasets (the only TensorFlow import)
  models.py          the Generator and Discriminator (Flax linen)
  losses.py          the losses and accuracy (BCE on logits)
  train.py           the train state, the train step, the loop, `python -m gan_jax.train`
  checkpoints.py     orbax checkpoints: save, restore, fall back to a good one
  plotting.py        image grids and curves (matplotlib)
  sample.py          `python -m gan_jax.sample`: images from a checkpoint
  evaluate.py        `python -m gan_jax.evaluate`: FID, KID, precision/recall of a run
  metrics/           the shipped Fashion-MNIST classifier and the score maths
  errors.py          UserError / RunFailed: one-line messages, exit codes 2 / 1
"""

__version__ = "0.1.0"
