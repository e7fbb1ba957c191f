"""Score names that carry their N, as StyleGAN's `fid50k_full` and StudioGAN's printed N do: FID depends strongly on
the number of samples (the floor is 3.6 at N = 2,000 and 0.54 at N = 10,000), so `fid` at N = 2,000 (evaluation
during training) and at N = 10,000 (gan_jax.evaluate) are written `fid_2k` and `fid_10k`.

  with_n(scores, n)   {'fid': ..} -> {'fid_2k': ..}: what every writer of scores (metrics.jsonl, TensorBoard,
                      eval.json) writes
  plain(record)       the other way, for readers; keys without an N (files written before the names carried it)
                      pass as they are, so old run folders still read
  sized(entry)        a `--metrics` entry and the N it asks for: 'fid_10k' -> ('fid', 10000), 'fid' -> ('fid', None)
"""

from __future__ import annotations

import re

SCORES = ("fid", "kid", "kid_std", "precision", "recall", "density", "coverage", "classifier_score", "class_entropy",
          "label_accuracy", "intra_class_fid", "class_histogram")
"""The names metrics.reference.Reference.score writes (before the N)."""

_NAMED = re.compile(r"^(?P<score>.+)_(?P<n>\d+k?)$")


def tag(n: int) -> str:
    """N as names carry it: 2000 -> '2k', 10000 -> '10k', 500 -> '500'."""
    return f"{n // 1000}k" if n % 1000 == 0 else str(n)


def count(text: str) -> int | None:
    """N as names carry it, back: '2k' -> 2000, '500' -> 500; None for anything else."""
    match = re.fullmatch(r"(\d+)(k?)", text)
    return None if match is None else int(match[1]) * (1000 if match[2] else 1)


def sized(entry: str) -> tuple[str, int | None]:
    """A `--metrics` entry: its name and the N it asks for (StyleGAN's `fid50k`), or None for the run's own N:
    'fid_10k' -> ('fid', 10000), 'pr_500' -> ('pr', 500), 'fid' -> ('fid', None)."""
    name, _, n = entry.rpartition("_")
    return (name, count(n)) if name and count(n) is not None else (entry, None)


def with_n(scores: dict, n: int) -> dict:
    """`scores` with each score's name carrying N (other keys as they are)."""
    return {f"{k}_{tag(n)}" if k in SCORES else k: v for k, v in scores.items()}


def base(key: str) -> str:
    """The score a key names without its N ('fid_2k' -> 'fid'); any other key as it is."""
    match = _NAMED.match(key)
    return match["score"] if match and match["score"] in SCORES else key


def plain(record: dict) -> dict:
    """`record` with its scores' names without N (a record of one N: an evaluation's, or an eval.json)."""
    return {base(k): v for k, v in record.items()}
