"""bench/frontier/: the contenders, the FID-against-time curve per contender from run folders or their copies, the
factors table, the GPU script."""

import dataclasses
import importlib.util
import json

import pytest

from conftest import REPO


def _frontier(name):
    """bench/frontier/NAME.py as a module (bench/ is not a package)."""
    spec = importlib.util.spec_from_file_location(f"frontier_{name}", REPO / "bench" / "frontier" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _differ(a, b):
    """The names of the fields in which configs a and b differ."""
    return {f.name for f in dataclasses.fields(a) if getattr(a, f.name) != getattr(b, f.name)}


def _run(folder, name, fids, final, flat):
    """A run with FID at iterations 0, 9, 19 (fids) and its final scores, as run.sh writes it or as copied."""
    records = [{"iteration": i, "g_loss": 1.0} for i in range(20)]
    for i, fid in zip((0, 9, 19), fids):
        records[i]["fid"] = fid
    text = "\n".join(json.dumps(r) for r in records) + "\n"
    score = json.dumps({"fid": final, "kid": final / 2, "precision": 0.5, "recall": 0.25})
    if flat:
        (folder / f"{name}_metrics.jsonl").write_text(text)
        (folder / f"{name}_eval.json").write_text(score)
    else:
        (folder / name).mkdir()
        (folder / name / "metrics.jsonl").write_text(text)
        (folder / name / "eval.json").write_text(score)


def test_minutes_are_iterations_times_the_budgets_step_and_seeds_are_summarized(tmp_path):
    curve = _frontier("curve")
    _run(tmp_path, "a_s0", (900.0, 300.0, 100.0), 90.0, flat=False)
    _run(tmp_path, "a_s1", (700.0, 500.0, 200.0), 110.0, flat=True)
    _run(tmp_path, "b_s0", (800.0, 400.0, 50.0), 40.0, flat=False)
    _run(tmp_path, "b_s1", (800.0, 400.0, 70.0), 60.0, flat=False)
    result = curve.frontier(curve.read_runs(str(tmp_path)), {"a": 600.0, "b": 1200.0})
    assert list(result) == ["b", "a"]  # best final mean FID first
    a = result["a"]
    assert a["seeds"] == [0, 1]
    # iteration 9 is after 10 iterations of 600 ms: 0.1 min; mean, min, max of the two seeds
    assert a["points"][1] == pytest.approx([0.1, 400.0, 300.0, 500.0, 2])
    assert result["b"]["points"][2][0] == pytest.approx(20 * 1.2 / 60)
    assert a["final"]["fid"]["mean"] == 100.0 and a["final"]["fid"]["std"] == pytest.approx(14.1421356, rel=1e-6)
    # 2 + 2 seeds: 6 splits; |diff of means| >= the observed 50 in 2 of them (the observed and its mirror)
    assert a["fid_p_vs_best"] == pytest.approx(2 / 6) and result["b"]["fid_p_vs_best"] is None
    table = curve.table(result)
    assert table.index("`b`") < table.index("`a`") and "| `a` | 2 | 20 | 0.2 | 100.0 ± 14.1 | 0.333 |" in table


def test_a_seed_without_a_curve_adds_its_final_score_only(tmp_path):
    """A record derived from another run's raw G (bench/frontier/raw_of_ema.py) has losses but no FID points: the
    curve is the other seeds', the final table all seeds'."""
    curve = _frontier("curve")
    _run(tmp_path, "a_s0", (900.0, 300.0, 100.0), 90.0, flat=False)
    _run(tmp_path, "a_s1", (700.0, 500.0, 200.0), 110.0, flat=False)
    records = [json.loads(line) for line in (tmp_path / "a_s1" / "metrics.jsonl").read_text().splitlines()]
    (tmp_path / "a_s1" / "metrics.jsonl").write_text("".join(json.dumps({k: v for k, v in r.items() if k != "fid"})
                                                             + "\n" for r in records))
    a = curve.frontier(curve.read_runs(str(tmp_path)), {"a": 600.0})["a"]
    assert a["seeds"] == [0, 1] and a["final"]["fid"]["values"] == [90.0, 110.0]
    assert a["points"][1] == pytest.approx([0.1, 300.0, 300.0, 300.0, 1])
    a_s1 = curve.read_runs(str(tmp_path))["a"][1]  # its iterations from its losses: 20 at 600 ms, 0.2 min
    assert a_s1["curve"] == [] and a_s1["iterations"] == 20
    (tmp_path / "a_s0").rename(tmp_path / "elsewhere")
    only_derived = curve.frontier(curve.read_runs(str(tmp_path)), {"a": 600.0})
    assert "| `a` | 1 | 20 | 0.2 | 110.0 ± 0.0 |" in curve.table(only_derived)


def test_the_command_writes_its_three_files_and_refuses_an_unknown_contender(tmp_path, capsys):
    curve = _frontier("curve")
    runs, out = tmp_path / "runs", tmp_path / "out"
    runs.mkdir()
    _run(runs, "a_s0", (900.0, 300.0, 100.0), 90.0, flat=False)
    contenders = tmp_path / "contenders.json"
    contenders.write_text(json.dumps({"contenders": {"a": {"step_ms": 100.0}}}))
    curve.main(["--runs", str(runs), "--contenders", str(contenders), "--out", str(out)])
    assert {p.name for p in out.iterdir()} == {"frontier.json", "frontier.md", "frontier.png"}
    assert "| `a` | 1 |" in capsys.readouterr().out
    _run(runs, "c_s0", (1.0, 1.0, 1.0), 1.0, flat=True)
    with pytest.raises(SystemExit):
        curve.main(["--runs", str(runs), "--contenders", str(contenders), "--out", str(out)])
    assert "no step time for c" in capsys.readouterr().err


def test_the_committed_records_read_whatever_their_score_names():
    """Records written before the scores' names carried N (final_b/dcgan_s0: `fid` in metrics.jsonl and eval.json)
    read as they did: its curve at N = 2,000 and its final FID at N = 10,000."""
    runs = _frontier("curve").read_runs(str(REPO / "bench" / "results" / "frontier" / "final_b"))
    seed0 = runs["dcgan"][0]
    assert seed0["final"]["fid"] == pytest.approx(16.876, abs=1e-3) and seed0["final"]["recall"] == 0.731
    assert len(seed0["curve"]) == 11 and seed0["curve"][-1][0] == 10000


def test_best_is_the_winner_of_the_committed_finals():
    """`best` (gan_jax/presets.py) is the contender of the finals at B (bench/results/frontier/final_b) with the
    lowest mean FID at N = 10,000 over its seeds (3 or more), from the committed records alone; and it meets the
    goal the preset's comment quotes (mean FID <= 11, mean recall >= 0.75)."""
    import numpy as np

    from gan_jax import presets

    contenders = _frontier("contenders")
    runs = _frontier("curve").read_runs(str(REPO / "bench" / "results" / "frontier" / "final_b"))
    finals = {label: [r["final"] for r in seeds.values()] for label, seeds in runs.items() if len(seeds) >= 3}
    fid = {label: np.mean([f["fid"] for f in finals[label]]) for label in finals}
    winner = min(fid, key=fid.get)
    name, overrides, _ = contenders.CONTENDERS[winner]
    final_b = REPO / "bench" / "results" / "frontier" / "final_b"
    trained = {json.load(open(final_b / f"{winner}_s{seed}" / "config.json"))["iterations"] for seed in runs[winner]}
    assert len(trained) == 1  # best trains as long as the finals' runs did: the iterations that fit into B
    assert presets.preset("best") == dataclasses.replace(presets.preset(name), **overrides, iterations=trained.pop())
    assert winner == "dcgan_dense128_ema" and round(fid[winner], 1) == 7.2
    assert fid[winner] <= 11 and np.mean([f["recall"] for f in finals[winner]]) >= 0.75


def test_the_crosses_take_the_networks_of_one_preset_and_the_recipe_of_the_other():
    """dcgan_r3gan_recipe is the r3gan contender at the same iterations but for dcgan's networks (arch, noise
    size, G's BatchNorm on the fakes; D unnormalized as in r3gan), dcgan_r3gan_recipe_d_bn the same with D's
    BatchNorm; r3gan_m_dcgan_recipe is dcgan but for r3gan_m's networks (arch, widths, D unnormalized)."""
    contender, differ = _frontier("contenders").contender, _differ
    assert differ(contender("dcgan_r3gan_recipe", 40), contender("r3gan", 40)) == {"arch", "latent_dim", "fake_bn"}
    assert differ(contender("dcgan_r3gan_recipe_d_bn", 40), contender("dcgan_r3gan_recipe", 40)) == {"d_norm"}
    assert differ(contender("r3gan_m_dcgan_recipe", 40), contender("dcgan", 40)) == {"arch", "r3gan_widths",
                                                                                     "d_norm"}
    assert contender("r3gan_m_dcgan_recipe", 40).r3gan_widths == contender("r3gan_m", 40).r3gan_widths


def test_the_parts_of_r3gans_recipe_partition_it_and_each_contender_adds_one():
    """R3GAN_PARTS covers every field of R3GAN_RECIPE once, R3GAN_ADAM_PARTS every field of its r3gan_adam once;
    dcgan_d_unnormalized_PART differs from dcgan_d_unnormalized, and dcgan_PART from dcgan, in PART's fields alone
    (and the schedules' horizon, which only the scheduled fields read)."""
    contenders = _frontier("contenders")
    keys = [k for part in contenders.R3GAN_PARTS.values() for k in part]
    assert sorted(keys) == sorted(contenders.R3GAN_RECIPE) and len(keys) == len(set(keys))
    adam_keys = [k for part in contenders.R3GAN_ADAM_PARTS.values() for k in part]
    assert sorted(adam_keys) == sorted(contenders.R3GAN_PARTS["r3gan_adam"]) and len(adam_keys) == len(set(adam_keys))
    for base_label in ("dcgan_d_unnormalized", "dcgan"):
        base = contenders.contender(base_label, 40)
        for part, fields in {**contenders.R3GAN_PARTS, **contenders.R3GAN_ADAM_PARTS}.items():
            config = contenders.contender(f"{base_label}_{part}", 40)
            added = {k for k in fields if getattr(base, k) != contenders.R3GAN_RECIPE[k]}
            assert added and _differ(config, base) - {"schedule_iterations"} == added
    assert contenders.contender("dcgan_r3gan_adam", 40).d_norm == contenders.contender("dcgan", 40).d_norm != "none"


def test_a_study_at_equal_iterations_has_iterations_on_its_axis(tmp_path, capsys):
    """contenders.py --iterations writes no step times: the points are at iterations, the table has no minutes; a
    contenders.json with step times for some contenders only is refused."""
    curve = _frontier("curve")
    runs, out = tmp_path / "runs", tmp_path / "out"
    runs.mkdir()
    _run(runs, "a_s0", (900.0, 300.0, 100.0), 90.0, flat=False)
    _run(runs, "b_s0", (800.0, 400.0, 50.0), 40.0, flat=False)
    result = curve.frontier(curve.read_runs(str(runs)), {"a": None, "b": None})
    assert [p[0] for p in result["a"]["points"]] == [1, 10, 20]
    assert "| `a` | 1 | 20 | — | 90.0 ± 0.0 |" in curve.table(result)
    contenders = tmp_path / "contenders.json"
    contenders.write_text(json.dumps({"contenders": {"a": {"step_ms": None}, "b": {"step_ms": 100.0}}}))
    with pytest.raises(SystemExit):
        curve.main(["--runs", str(runs), "--contenders", str(contenders), "--out", str(out)])
    assert "gives step times for some" in capsys.readouterr().err


def test_the_gpu_script_trains_the_cpu_finals_configs_and_the_winner_at_ten_times():
    """bench/frontier/gpu.py's contenders are the committed CPU finals' configs, their raw-G twins named, and its
    winner part is `best` (dcgan_dense128_ema's config, the preset's iterations) at 10x."""
    from gan_jax.config import load
    from gan_jax.presets import preset

    gpu = _frontier("gpu")
    labels = [label for part in gpu.PARTS.values() for label, _, _ in part]
    assert sorted(gpu.RAW_TWIN) == sorted(labels)
    for part in gpu.PARTS.values():
        for _, config_name, _ in part:
            assert (REPO / "bench" / "results" / "frontier" / "final_b" / "configs" / f"{config_name}.json").is_file()
    [(label, config_name, times)] = gpu.PARTS["winner"]
    winner = load(str(REPO / "bench" / "results" / "frontier" / "final_b" / "configs" / f"{config_name}.json"))
    assert times == 10 and winner.iterations == preset("best").iterations == 16802
    assert _differ(winner, preset("best")) <= {"eval_every", "checkpoint_every", "sample_every", "progress"}


def test_the_factors_table_in_the_docs_is_the_committed_records():
    """docs/results.md holds the factors table exactly as bench/frontier/factors_table.py builds it from the
    committed records (bench/results/frontier/factors), and every row's contender is one of contenders.py."""
    factors = _frontier("factors_table")
    assert {label for _, _, label in factors.ROWS} <= set(_frontier("contenders").CONTENDERS)
    built = factors.table()
    assert built in (REPO / "docs" / "results.md").read_text()
    assert "| dcgan | dcgan's | `dcgan` | 164.0, 174.5, 161.0 | **166.5** | 0.778 | 0.385 |" in built


def test_the_factors_table_marks_the_ema_g_and_means_two_seeds_or_more(tmp_path, capsys):
    factors = _frontier("factors_table")
    for name, fid, generator in (("dcgan_s0", 100.0, "raw"), ("dcgan_s1", 120.0, "raw"), ("r3gan_m_s1", 500.04, "ema"),
                                 ("dcgan_s0_old", 1.0, "raw")):
        (tmp_path / name).mkdir()
        (tmp_path / name / "metrics.jsonl").write_text(json.dumps({"iteration": 0, "g_loss": 1.0}) + "\n")
        (tmp_path / name / "eval.json").write_text(json.dumps({"fid_10k": fid, "generator": generator,
                                                               "precision_10k": 0.5, "recall_10k": 0.25}))
    assert factors.table(str(tmp_path)).splitlines()[2:] == [
        "| dcgan | dcgan's | `dcgan` | 100.0, 120.0 | **110.0** | 0.500 | 0.250 |",
        "| r3gan_m | r3gan's | `r3gan_m` | 500.0* | — | 0.500 | 0.250 |"]
    with pytest.raises(SystemExit):
        factors.main(["--runs", str(tmp_path / "missing")])
    assert capsys.readouterr().err.strip().splitlines()[-1].endswith("no such folder; give the study's records "
                                                                     "(bench/results/frontier/factors)")
