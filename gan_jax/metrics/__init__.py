"""Measuring what the generator learned, with a Fashion-MNIST classifier shipped in the package.

  classifier.py        the CNN, its committed weights, features and class probabilities
  train_classifier.py  `python -m gan_jax.metrics.train_classifier`: how the weights were made
  scores.py            FID, KID, precision/recall, classifier score, class histogram (NumPy)
"""
