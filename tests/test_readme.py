"""The README's Python examples run as written: training from Python, and adding a loss, a
penalty and a network (on the real data, a few iterations)."""

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


def test_readme_python_examples_run(tmp_path, monkeypatch, tfds_dir, manual_dir, capsys):
    from gan_jax import losses, models, penalties

    blocks = _python_blocks()
    assert len(blocks) == 2
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("GAN_JAX_MANUAL_DIR", manual_dir)
    monkeypatch.setenv("GAN_JAX_DATA_DIR", tfds_dir)
    # The examples add to the dicts; leave them as they were for the other tests.
    tables = (losses.LOSSES, penalties.PENALTIES, models.ARCHITECTURES)
    saved = [t.copy() for t in tables]
    namespace: dict = {}
    try:
        exec(compile(blocks[0], "README block 1", "exec"), namespace)
        assert capsys.readouterr().out.strip().splitlines()[-1] == "100"
        assert os.path.getsize(tmp_path / "runs" / "sngan_short" / "metrics.jsonl") > 0
        exec(compile(blocks[1], "README block 2", "exec"), namespace)
        state = namespace["state"]
        assert int(state.step) == 100 and "Dense_1" in state.d_params and "Dense_2" not in state.d_params  # TinyD
        records = (tmp_path / "runs" / "mine" / "metrics.jsonl").read_text().splitlines()
        assert '"d_penalty"' in records[-1]
    finally:
        for table, old in zip(tables, saved):
            table.clear()
            table.update(old)
