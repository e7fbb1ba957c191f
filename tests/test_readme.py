"""The README's Python examples run as written: training from Python, and adding a loss, a network and an
update order (on the real data, a few iterations)."""

import os
import re

import pytest

from conftest import REPO

pytestmark = pytest.mark.integration


def _python_blocks() -> list[str]:
    text = (REPO / "README.md").read_text()
    section = text[text.index("## Extending"):]
    section = section[:section.index("\n## ", 1)]
    return re.findall(r"```python\n(.*?)```", section, flags=re.S)


def _clean_env(monkeypatch, tmp_path, tfds_dir, manual_dir) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("GAN_JAX_MANUAL_DIR", manual_dir)
    monkeypatch.setenv("GAN_JAX_DATA_DIR", tfds_dir)


def test_readme_training_from_python_runs(tmp_path, monkeypatch, tfds_dir, manual_dir, capsys):
    """Block 1 trains from Python (100 iterations) and prints the step."""
    _clean_env(monkeypatch, tmp_path, tfds_dir, manual_dir)
    exec(compile(_python_blocks()[0], "README block 1", "exec"), {})
    assert capsys.readouterr().out.strip().splitlines()[-1] == "100"
    assert os.path.getsize(tmp_path / "runs" / "sngan_short" / "metrics.jsonl") > 0


def test_readme_extensions_run(tmp_path, monkeypatch, tfds_dir, manual_dir):
    """Blocks 2-4 (after block 1's imports and config, without its training) add a loss, a network and an update
    order as entries and train 20 iterations with each (what each block's names reach is checked: the loss's
    terms, TinyD's layers, the order's three updates per iteration)."""
    from gan_jax import losses, models, orders, penalties

    blocks = _python_blocks()
    assert len(blocks) == 4
    _clean_env(monkeypatch, tmp_path, tfds_dir, manual_dir)
    setup = blocks[0][:blocks[0].index("\nstate = train_and_evaluate(")]
    # The examples add to the dicts; leave them as they were for the other tests.
    tables = (losses.LOSSES, penalties.PENALTIES, models.ARCHITECTURES, orders.UPDATE_ORDERS)
    saved = [t.copy() for t in tables]
    namespace: dict = {}
    try:
        exec(compile(setup, "README block 1 (imports and config)", "exec"), namespace)
        exec(compile(blocks[1], "README block 2 (a loss)", "exec"), namespace)
        assert int(namespace["state"].step) == 20 and "rals" in losses.LOSSES
        exec(compile(blocks[2], "README block 3 (a network)", "exec"), namespace)
        state = namespace["state"]
        assert int(state.step) == 20 and "Dense_1" in state.d.params and "Dense_2" not in state.d.params  # TinyD
        exec(compile(blocks[3], "README block 4 (an update order)", "exec"), namespace)
        state = namespace["state"]
        config = namespace["config"]  # D's rounds twice per iteration, each of d_steps rounds of 1 (joint) update
        assert int(state.step) == 20 and config.d_update == "joint"
        assert int(state.d.opt_state[0].count) == 20 * 2 * config.d_steps and int(state.g.opt_state[0].count) == 20
    finally:
        for table, old in zip(tables, saved, strict=True):
            table.clear()
            table.update(old)
