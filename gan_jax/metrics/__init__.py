"""Measuring what the generator learned, with a Fashion-MNIST classifier shipped in the package.

  classifier.py        the CNN, its committed weights, features and class probabilities
  train_classifier.py  `python -m gan_jax.metrics.train_classifier`: how the weights were made
  scores.py            FID, KID, precision/recall, density/coverage, classifier score, class histogram (NumPy)
  reference.py         the real images' features, and METRICS: what `--metrics` can compute
  names.py             score names that carry their N (fid_2k, fid_10k), and reading them back
"""
