"""gan_jax: a pure-JAX GAN trainer, starting as a faithful port of a Keras Fashion-MNIST GAN.

Where things are (each file owns one thing; imports go down this list, never up):
  train.py           `python -m gan_jax.train`: the command line (sample.py, evaluate.py: theirs)
  loop.py            train_and_evaluate(config, workdir): the fused loop and every output of a run
  run.py             the run folder: refuse/overwrite, resume checks, clean stops on signals
  checkpoints.py     orbax checkpoints: save, restore, fall back to a good one, load a run
  sampling.py        images from a train state (grids, evaluation, gan_jax.sample)
  step.py            the train state and the pure train step: the update order, in one place
  models.py          the networks (Flax linen)
  losses.py          the losses and accuracy (BCE on logits)
  input_pipeline.py  Fashion-MNIST through tensorflow-datasets (the only TensorFlow import)
  config.py          every tunable, presets, and the command line parser
  plotting.py        image grids and curves (matplotlib)
  metrics/           the shipped Fashion-MNIST classifier, the score maths, the real-image reference
  errors.py          UserError / RunFailed: one-line messages, exit codes 2 / 1
"""

__version__ = "0.1.0"
