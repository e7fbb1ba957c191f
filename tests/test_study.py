"""The study command: presets x seeds at one budget, scored, summarized, ranked."""

import dataclasses
import json
import os
import signal

import numpy as np
import pytest

from conftest import REPO, assert_one_line_error, in_process, run_module
from gan_jax import presets
from gan_jax import evaluate, population, stats, study
from gan_jax.errors import Stopped

STUDY_RESULT = REPO / "bench" / "results" / "study_epyc_2000.json"
"""The study docs/results.md's 9-preset table and the `best` preset come from."""


def test_spearman_against_hand_computation():
    # identical order: +1; reversed: -1; one swap among 4: 1 - 6 * (1 + 1) / (4 * 15) = 0.8
    assert stats.spearman({"a": 1, "b": 2, "c": 3}, {"a": 10, "b": 20, "c": 30})["rho"] == 1.0
    assert stats.spearman({"a": 1, "b": 2, "c": 3}, {"a": 30, "b": 20, "c": 10})["rho"] == -1.0
    result = stats.spearman({"a": 1, "b": 2, "c": 3, "d": 4, "x": 0}, {"a": 2, "b": 1, "c": 3, "d": 4, "y": 9})
    assert result["methods"] == ["a", "b", "c", "d"] and result["rho"] == pytest.approx(0.8, abs=1e-12)
    assert stats.spearman({"a": 1, "b": 2}, {"a": 1, "b": 2}) is None  # fewer than 3 shared


def test_permutation_p_against_hand_counts():
    # [1, 2, 3] vs [4, 5, 6]: of the C(6, 3) = 20 splits, only these two have |difference of means| = 3
    assert stats.permutation_p([1.0, 2.0, 3.0], [4.0, 5.0, 6.0]) == pytest.approx(2 / 20)
    # [0, 2] vs [1, 1]: equal means; every one of the 6 splits is at least as far apart
    assert stats.permutation_p([0.0, 2.0], [1.0, 1.0]) == 1.0
    # [0, 1] vs [1, 3]: observed |0.5 - 2| = 1.5; splits {0,1}|{1,3} twice (the two 1s) and their mirrors
    # {1,3}|{0,1} twice reach 1.5; {0,3}|{1,1} and {1,1}|{0,3} give 0.5: 4 of 6
    assert stats.permutation_p([0.0, 1.0], [1.0, 3.0]) == pytest.approx(4 / 6)
    assert stats.permutation_p([1.0], [2.0, 3.0]) is None
    # sampled beyond PERMUTATION_DRAWS splits: C(40, 20) of them; clearly separated groups give the floor
    far = stats.permutation_p(list(range(20)), list(range(100, 120)))
    assert far == pytest.approx(1 / (stats.PERMUTATION_DRAWS + 1))
    # the p quoted in docs/results.md for the H200 bf16 study (5 seeds each: 252 splits, exact)
    summary = json.loads((REPO / "bench" / "results" / "gpu_h200" / "study.json").read_text())["summary"]
    p = stats.permutation_p(summary["reference"]["fid"]["values"], summary["reference_bf16"]["fid"]["values"])
    assert p == pytest.approx(160 / 252) and round(p, 2) == 0.63


def _scores(fid, recall=0.5):
    return {"fid": fid, "precision": 0.7, "recall": recall, "classifier_score": 5.0, "kid": 1.0, "class_entropy": 0.9}


def test_summary_is_mean_and_sample_std_best_first(tmp_path):
    for seed, seconds in ((0, 50.0), (1, 40.0)):  # each run folder holds its share of the population's time
        os.makedirs(tmp_path / "b" / f"seed_{seed}")
        (tmp_path / "b" / f"seed_{seed}" / "study_time.json").write_text(json.dumps({"train_seconds": seconds}))
    runs = {"a": [_scores(300.0, 0.1), _scores(310.0, 0.3), _scores(320.0, 0.2)],
            "b": [{**_scores(20.0), "workdir": str(tmp_path / "b" / f"seed_{s}")} for s in (0, 1)]}
    runs["b"][1]["fid"] = 24.0
    summary = study.summarize(runs)
    assert list(summary) == ["b", "a"]
    assert summary["a"]["fid"]["mean"] == 310.0 and summary["a"]["fid"]["std"] == 10.0  # ddof 1: sqrt(200 / 2)
    assert summary["b"]["fid"]["std"] == pytest.approx(np.sqrt(8.0))
    assert summary["a"]["recall"]["values"] == [0.1, 0.3, 0.2]
    assert summary["a"]["recall"]["mean"] == pytest.approx(0.2)
    assert summary["b"]["train_seconds"] == 90.0 and summary["a"]["train_seconds"] is None
    assert study.summarize({"c": [_scores(5.0)]})["c"]["fid"]["std"] == 0.0
    assert "| rank | config | FID (N = 10) |" in study.markdown_table({"settings": {"seeds": [0], "iterations": 1, "n": 10},
                                                             "machine": "M", "summary": {}, "failed": {}})

    table = study.markdown_table({"settings": {"seeds": [0, 1, 2], "iterations": 100, "n": 10000}, "machine": "M",
                                  "summary": summary, "failed": {"wgan": "training diverged"},
                                  "lucic_spearman": {"rho": 0.5, "methods": ["a", "b", "c"]}})
    rows = [line for line in table.splitlines() if line.startswith("| ")]
    assert rows[1] == "| 1 | `b` | 22.0 ± 2.8 | — | 0.700 ± 0.000 | 0.500 ± 0.000 | 5.00 ± 0.00 | 90 s | — |"
    # of the C(5, 3) = 10 ways to pick a's three runs from the five, only the observed one is as far apart
    assert summary["a"]["fid_p_vs_best"] == pytest.approx(0.1) and summary["b"]["fid_p_vs_best"] is None
    assert rows[2].startswith("| 2 | `a` | 310.0 ± 10.0 | 0.100 | 0.700 ± 0.000 | 0.200 ± 0.100 |")
    assert rows[3] == "| — | `wgan` | failed: training diverged | | | | | | 21.5 |"
    assert "with 3 seeds each the smallest possible p is 0.100" in table
    assert "| FID (N = 10k) |" in rows[0] and "3 seeds (0,1,2) x 100 iterations" in table and table.endswith("over a, b, c: +0.50.\n")


@pytest.mark.integration
def test_bad_flags_are_one_line_errors(tmp_path, capfd):
    """The first in a process of its own, the rest in this one (conftest.in_process: the same run_cli)."""
    assert_one_line_error(run_module("gan_jax.study", "--presets", "reference,began"), "unknown preset began")
    assert_one_line_error(in_process(capfd, "study", "--presets", "lsgan,lsgan"), "listed twice")
    assert_one_line_error(in_process(capfd, "study", "--seeds", "0,0"), "--seeds")
    assert_one_line_error(in_process(capfd, "study", "--iterations", "0"), "--iterations")
    assert_one_line_error(in_process(capfd, "study", "--n", "5", "--workdir", str(tmp_path / "s")), "--n must be")
    (tmp_path / "file").write_text("x")
    assert_one_line_error(in_process(capfd, "study", "--workdir", str(tmp_path / "file" / "s")), "cannot write to --workdir")
    # a run folder from a study with a larger budget: refused before anything is written
    os.makedirs(tmp_path / "big" / "lsgan" / "seed_1" / "checkpoints" / "50")
    proc = in_process(capfd, "study", "--presets", "lsgan", "--seeds", "0,1", "--iterations", "20",
                      "--workdir", str(tmp_path / "big"))
    assert_one_line_error(proc, "lsgan/seed_1 holds a run of 50 iterations", "--iterations 50")
    assert sorted(os.listdir(tmp_path / "big")) == ["lsgan"] and os.listdir(tmp_path / "big" / "lsgan") == ["seed_1"]


@pytest.mark.integration
def test_a_study_on_the_real_data_and_its_rerun(tmp_path, tfds_dir, manual_dir, capsys, monkeypatch):
    workdir = str(tmp_path / "study")
    argv = ["--workdir", workdir, "--presets", "minimax,reference", "--seeds", "0,1", "--iterations", "3",
            "--n", "100", "--manual-dir", manual_dir, "--data-dir", tfds_dir, "--no-progress"]
    # a signal stops the first population before its end (checkpointed): nothing is scored, the study stops
    def stopped(*args, **kwargs):
        raise Stopped(signal.SIGTERM, "stopped by SIGTERM after iteration 1 (checkpoint written); ...")

    with monkeypatch.context() as m:
        m.setattr(population, "train_population", stopped)
        with pytest.raises(Stopped, match="^study: stopped while training minimax; run the same command to continue"):
            study.main(argv)
    # the study's lock and its holder's name; nothing trained to the end, nothing scored
    assert sorted(os.listdir(workdir)) == [".gan_jax.holder", ".gan_jax.lock"]

    assert study.main(argv) == 0
    out = capsys.readouterr().out
    table = out[out.index("2 seeds (0,1)"):]
    assert sorted(os.listdir(workdir)) == [".gan_jax.holder", ".gan_jax.lock", "fid_boxplot.png", "minimax",
                                           "reference", "study.json", "study.md"]
    result = json.load(open(os.path.join(workdir, "study.json")))
    assert result["settings"] == {"configs": ["minimax", "reference"], "seeds": [0, 1], "iterations": 3, "n": 100,
                                  "eval_seed": 0}
    assert set(result["runs"]) == {"minimax", "reference"} and result["failed"] == {}
    for name, scores in result["runs"].items():
        assert [r["checkpoint"] for r in scores] == [3, 3] and [r["n"] for r in scores] == [100, 100]
        assert result["summary"][name]["fid_100"]["values"] == [r["fid_100"] for r in scores]  # names with their N
        assert scores[0]["fid_100"] != scores[1]["fid_100"]  # two seeds, two runs
        assert "fid" not in scores[0] and "precision" not in result["summary"][name]
        config = json.load(open(os.path.join(workdir, name, "seed_1", "config.json")))
        assert (config["seed"], config["iterations"], config["eval_every"]) == (1, 3, 0)
    assert json.load(open(os.path.join(workdir, "minimax", "seed_0", "config.json")))["loss"] == "minimax"
    assert open(os.path.join(workdir, "study.md")).read() == table
    assert study.markdown_table(result) == table  # study.json reads back: its names carry their N

    # a run's scores are gan_jax.evaluate's (same N and seed): the same numbers
    out = str(tmp_path / "eval.json")
    evaluate.main(["--workdir", os.path.join(workdir, "reference", "seed_1"), "--n", "100", "--out", out,
                   "--manual-dir", manual_dir, "--data-dir", tfds_dir])
    alone = json.load(open(out))
    assert {k: alone[k] for k in ("fid_100", "recall_100", "precision_100", "classifier_score_100")} == \
        {k: result["runs"]["reference"][1][k] for k in ("fid_100", "recall_100", "precision_100", "classifier_score_100")}

    # the same command again: nothing retrained or rescored, the same table
    times = {name: open(os.path.join(workdir, name, "seed_0", "study_time.json")).read()
             for name in ("minimax", "reference")}
    stamps = os.stat(os.path.join(workdir, "reference", "seed_0", "eval.json")).st_mtime_ns
    capsys.readouterr()
    assert study.main(argv) == 0
    assert capsys.readouterr().out == table
    assert times == {name: open(os.path.join(workdir, name, "seed_0", "study_time.json")).read() for name in times}
    assert os.stat(os.path.join(workdir, "reference", "seed_0", "eval.json")).st_mtime_ns == stamps

    # the same study in 2 shards (a config file for one of them), then the summary: the same scores
    sharded = str(tmp_path / "sharded")
    (tmp_path / "minimax.json").write_text(json.dumps({"loss": "minimax"}))
    shard_argv = [a if a != workdir else sharded for a in argv]
    shard_argv[shard_argv.index("minimax,reference")] = "reference"
    shard_argv += ["--configs", str(tmp_path / "minimax.json")]
    for shard in ("0/2", "1/2"):
        assert study.main(shard_argv + ["--shard", shard]) == 0
        assert "study.md" not in os.listdir(sharded)
    capsys.readouterr()
    assert study.main(shard_argv) == 0
    assert "study: 1/2" not in capsys.readouterr().err  # nothing left to train: only summarized
    summary = json.load(open(os.path.join(sharded, "study.json")))
    for name in ("minimax", "reference"):
        assert [r["fid_100"] for r in summary["runs"][name]] == [r["fid_100"] for r in result["runs"][name]]


def test_the_best_preset_builds_on_the_winner_of_the_committed_study():
    result = json.load(open(STUDY_RESULT))
    assert result["settings"]["presets"] == list(study.LITERATURE_PRESETS) and len(result["settings"]["seeds"]) >= 3
    assert result["settings"]["n"] == 10000 and result["failed"] == {}
    fids = {name: s["fid"]["mean"] for name, s in result["summary"].items()}
    assert "| 1 | `" in study.markdown_table(result)  # a study.json written before the names carried their N reads
    winner = min(fids, key=fids.get)
    # best is this winner with narrower dense layers, G's ramped EMA and the iterations that fit into the
    # frontier's budget: the frontier's finals' winner (tests/test_frontier.py)
    assert dataclasses.replace(presets.preset("best"), g_ema_half_life=None, g_ema_rampup=None, iterations=10001,
                               dcgan_widths=presets.preset("dcgan").dcgan_widths) == \
        presets.preset(winner) == presets.preset("dcgan")
    assert all(len(runs) == len(result["settings"]["seeds"]) for runs in result["runs"].values())
