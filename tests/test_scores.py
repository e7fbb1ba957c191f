"""FID, KID, precision/recall, density/coverage, classifier score: known answers on toy data; --metrics' entries."""

import numpy as np
import pytest
import scipy.linalg

from gan_jax.config import Config
from gan_jax.errors import UserError
from gan_jax.metrics import names, scores
from gan_jax.metrics.reference import METRICS, Reference, chosen


def _gaussian(n, d, seed, shift=0.0, scale=1.0):
    rng = np.random.default_rng(seed)
    mix = rng.normal(size=(d, d)) / np.sqrt(d)
    return shift + scale * rng.normal(size=(n, d)) @ mix


def scipy_fid(a, b):
    """The common reference implementation (pytorch-fid style) with scipy.linalg.sqrtm."""
    mu1, mu2 = a.mean(0), b.mean(0)
    c1, c2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    covmean = scipy.linalg.sqrtm(c1 @ c2).real
    return float(np.sum((mu1 - mu2) ** 2) + np.trace(c1 + c2 - 2 * covmean))


def test_fid_of_a_set_with_itself_is_zero():
    x = _gaussian(2000, 16, 0)
    assert scores.fid(x, x) == pytest.approx(0.0, abs=1e-8)


@pytest.mark.parametrize("seed", range(3))
def test_fid_matches_scipy_and_is_symmetric(seed):
    a = _gaussian(3000, 32, seed)
    b = _gaussian(3000, 32, seed + 10, shift=0.3, scale=1.2)
    ours, ref = scores.fid(a, b), scipy_fid(a, b)
    assert ours == pytest.approx(ref, rel=1e-3)
    assert scores.fid(b, a) == pytest.approx(ours, rel=1e-9)


def test_fid_of_known_gaussians():
    # N(0, I) vs N(m, I) in d dims: FID = |m|^2 (+ sampling noise, small for large N).
    rng = np.random.default_rng(0)
    a = rng.normal(size=(200_000, 4))
    b = rng.normal(size=(200_000, 4)) + 1.0
    assert scores.fid(a, b) == pytest.approx(4.0, abs=0.02)


@pytest.mark.slow
def test_kid_unbiased_for_equal_distributions_and_positive_otherwise():
    mix = np.random.default_rng(1).normal(size=(16, 16)) / 4  # one distribution, two independent draws
    a = np.random.default_rng(5).normal(size=(4000, 16)) @ mix
    b = np.random.default_rng(6).normal(size=(4000, 16)) @ mix
    mean, std = scores.kid(a, b, subsets=50, subset_size=1000)
    assert abs(mean) < 3 * std / np.sqrt(50) + 1e-4  # consistent with 0: no positive bias
    far_mean, _ = scores.kid(a, b + 1.0, subsets=20, subset_size=1000)
    assert far_mean > 50 * max(abs(mean), std)


def test_precision_recall_known_answers():
    rng = np.random.default_rng(0)
    cluster_a = rng.normal(size=(500, 2))
    cluster_b = rng.normal(size=(500, 2)) + 100.0
    real = np.concatenate([cluster_a, cluster_b])
    assert scores.precision_recall(real, real) == (1.0, 1.0)
    # Fakes cover only cluster A: every fake is realistic, half of the real data is missed.
    assert scores.precision_recall(real, cluster_a) == (1.0, 0.5)
    # Fakes far from everything: neither.
    assert scores.precision_recall(real, cluster_a + 1000.0) == (0.0, 0.0)


def test_density_coverage_by_hand():
    """Reals at x = 0, 1, 3, 6 on a line, k = 2: their balls' radii (2nd nearest other real) are 3, 2, 3, 5.
    Fakes at 0.5 (in the balls of 0, 1, 3), 20 (in none), 0.9 (in 0, 1, 3; 5.1 from 6) and 11 (exactly on 6's
    radius: in, distance <= radius): density = (3 + 0 + 3 + 1) / (2 * 4), coverage = 4 / 4; without the fake at 11,
    density = 6 / 6 and the real at 6 is uncovered: coverage 3 / 4."""
    line = lambda *x: np.stack([np.asarray(x, float), np.zeros(len(x))], 1)  # noqa: E731
    real = line(0, 1, 3, 6)
    assert scores.density_coverage(real, line(0.5, 20, 0.9, 11), k=2) == (7 / 8, 1.0)
    assert scores.density_coverage(real, line(0.5, 20, 0.9), k=2) == (1.0, 0.75)


def test_density_coverage_match_the_definition_on_random_features():
    """Against Naeem et al.'s definitions written out pair by pair, k = 5, blocks smaller than the sets; and the
    paper's sanity values: fakes from the reals' distribution score density ~1 and coverage ~1, fakes far away 0."""
    rng = np.random.default_rng(3)
    real, fake = rng.normal(size=(300, 4)), rng.normal(size=(200, 4)) * 1.5
    dist = np.linalg.norm(real[:, None] - fake[None], axis=-1)                  # (N, M)
    own = np.linalg.norm(real[:, None] - real[None], axis=-1)
    radii = np.sort(own, axis=1)[:, 5]                                          # column 0 is the point itself
    inside = dist <= radii[:, None]
    want = (inside.sum() / (5 * len(fake)), inside.any(axis=1).mean())
    got = scores.density_coverage(real, fake, k=5, block=64)
    np.testing.assert_allclose(got, want, rtol=1e-12)
    assert got == scores.density_coverage(real, fake, k=5)
    same = scores.density_coverage(rng.normal(size=(2000, 4)), rng.normal(size=(2000, 4)))
    assert 0.9 < same[0] < 1.1 and same[1] > 0.9
    assert scores.density_coverage(real, fake + 1000.0) == (0.0, 0.0)


def test_classifier_score_and_histogram_extremes():
    even = np.eye(10)[np.arange(1000) % 10]
    one = np.eye(10)[np.zeros(1000, int)]
    assert scores.classifier_score(even) == pytest.approx(10.0, rel=1e-6)
    assert scores.classifier_score(one) == pytest.approx(1.0, rel=1e-6)
    hist, entropy = scores.class_histogram(even)
    assert hist == [0.1] * 10 and entropy == pytest.approx(1.0)
    hist, entropy = scores.class_histogram(one)
    assert hist[0] == 1.0 and entropy == pytest.approx(0.0)


@pytest.mark.parametrize("name", list(METRICS))
def test_each_metric_computes_its_own_scores_and_nothing_else(name, tiny_data):
    """`--metrics NAME` (metrics.reference.METRICS): exactly its scores, each equal to the all-metrics call's, in
    the order the full call writes them; the names come from the dict, so a new entry is tested here too."""
    ref = Reference(tiny_data.normalized(slice(0, 32)), class_names=tiny_data.class_names)
    fakes = tiny_data.normalized(slice(32, 64))
    everything = ref.score(fakes, kid_subsets=2, kid_subset_size=10, with_histogram=False)
    alone = ref.score(fakes, kid_subsets=2, kid_subset_size=10, with_histogram=False, metrics=(name,))
    assert alone and alone == {k: everything[k] for k in alone}
    assert list(everything) == [k for m in METRICS for k in ref.score(
        fakes, kid_subsets=2, kid_subset_size=10, with_histogram=False, metrics=(m,))]
    assert chosen("all", 40) == {40: tuple(METRICS)} and chosen(f"{name}_20,fid", 40) == {20: (name,), 40: ("fid",)}


def test_metrics_entries_may_carry_their_own_n():
    """`--metrics fid_10k,pr` (StyleGAN's fid50k): {N: names}, an entry without an N at the run's own; the config
    refuses an N under 10, on 'all', or on a name that is no entry, in one line that shows the form."""
    assert chosen("fid_10k,pr,dc_500,kid", 2000) == {10000: ("fid",), 2000: ("pr", "kid"), 500: ("dc",)}
    assert chosen("fid_2k,fid", 2000) == {2000: ("fid",)}  # the same N twice: scored once
    assert names.sized("classifier") == ("classifier", None) and names.sized("pr_1500") == ("pr", 1500)
    assert Config(metrics="fid_10k,pr_500,dc").validate().metrics == "fid_10k,pr_500,dc"
    for bad in ("fid_5", "all_10k", "fid_10k,all", "nope_2k", "fid_10k,fid_10k", "fid_x"):
        with pytest.raises(UserError, match=r"^--metrics must be all or one or more of fid, .* \(each may carry its "
                                            r"number of samples, at least 10: fid_10k, pr_500\)"):
            Config(metrics=bad).validate()


def test_score_names_carry_their_n_and_read_back():
    """metrics.names: 2,000 -> fid_2k, 10,000 -> fid_10k, 500 -> fid_500; losses and run facts keep their names;
    plain() undoes it and passes names without an N (files written before) through."""
    assert [names.tag(n) for n in (2000, 10000, 50000, 500, 1500)] == ["2k", "10k", "50k", "500", "1500"]
    record = {"iteration": 3, "d_loss": 0.5, "fid": 12.0, "kid_std": 0.1, "class_histogram": {"a": 1.0}, "n": 2000}
    named = names.with_n(record, 2000)
    assert named == {"iteration": 3, "d_loss": 0.5, "fid_2k": 12.0, "kid_std_2k": 0.1, "class_histogram_2k": {"a": 1.0},
                     "n": 2000}
    assert names.plain(named) == record and names.plain(record) == record  # an old record reads as it is
    assert [names.base(k) for k in ("fid_10k", "recall_500", "d_loss_fake", "schedule_g_ema", "fid")] == \
        ["fid", "recall", "d_loss_fake", "schedule_g_ema", "fid"]
