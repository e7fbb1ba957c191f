"""Extending gan_jax: one of each thing a researcher adds (README, "Extending"), in the places the README's table
counts, and nothing a registry change can leave stale; the step's reading path and the config's layout."""

from __future__ import annotations

import ast
import dataclasses
import pathlib

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gan_jax import augment, build, chunk, config as config_lib, flags, losses, models, penalties, sampling, schedules
from gan_jax.models import dense

PACKAGE = pathlib.Path(__file__).resolve().parents[1] / "gan_jax"


def _sq_hinge_d(real_out, fake_out):
    return jnp.mean(jnp.square(jax.nn.relu(1.0 - real_out))), jnp.mean(jnp.square(jax.nn.relu(1.0 + fake_out)))


def _sq_hinge_g(fake_out, real_out):  # noqa: ARG001
    return -jnp.mean(fake_out)


def _fake_norm(d, real, fake, key):  # noqa: ARG001
    return jnp.mean(jnp.square(d(fake)))


def _negate(images, key):  # noqa: ARG001
    return -images


class _TinyD(nn.Module):
    @nn.compact
    def __call__(self, images, update_stats=False):  # noqa: ARG002
        return nn.Dense(1)(images.reshape((images.shape[0], -1)))[:, 0]


def test_one_of_each_added_in_its_place_is_a_choice_and_trains(tiny_config, tiny_data, monkeypatch):
    """A loss, a penalty, an architecture and an augmentation, each added as one registry entry (the README's
    places): the flags accept them, --help lists them, the config checks them, and the step trains with them."""
    monkeypatch.setitem(losses.LOSSES, "sq_hinge", losses.Loss(_sq_hinge_d, _sq_hinge_g))
    monkeypatch.setitem(penalties.PENALTIES, "fake_norm", penalties.Penalty(_fake_norm, reads_fakes=True))
    monkeypatch.setitem(models.ARCHITECTURES, "tiny", models.Architecture(
        lambda c: (dense.Generator(hidden=(16,), image_shape=c.image_shape), _TinyD())))
    monkeypatch.setitem(augment.AUGMENTS, "negate", _negate)
    parser = flags.OneLineParser(prog="t")
    flags.add_config_flags(parser)
    help_text = " ".join(parser.format_help().split())
    for name in ("sq_hinge", "fake_norm", "tiny", "negate"):
        assert name in help_text
    args = parser.parse_args(["--loss", "sq_hinge", "--penalty", "fake_norm", "--arch", "tiny", "--augment", "negate"])
    parsed = flags.config_from_args(args, tiny_config)
    config = dataclasses.replace(parsed, penalty_weight=1.0, d_update="joint")
    assert (config.loss, config.penalty, config.arch, config.augment) == ("sq_hinge", "fake_norm", "tiny", "negate")
    with pytest.raises(config_lib.UserError, match="--loss must be one of"):
        dataclasses.replace(config, loss="nope").validate()
    p = build.parts(config)
    assert p.loss.d is _sq_hinge_d and p.penalties[0].fn is _fake_norm and p.augments == (_negate,)
    state = build.create_train_state(config, jax.random.PRNGKey(0))
    real = jnp.asarray(tiny_data.normalized(slice(0, 8)))
    new, metrics = jax.jit(build.make_train_step(config))(state, real, jax.random.PRNGKey(1))
    assert int(new.step) == 1 and float(metrics["d_penalty"]) > 0
    assert all(np.isfinite(float(v)) for v in metrics.values())


def test_an_entry_replaced_after_a_configs_first_use_is_not_served_stale(tiny_config, monkeypatch):
    """Every cache keyed on a config is keyed on its registry entries too: the networks, the step's loss, the
    sampler and the resident chunk of a config follow an entry replaced after their first use."""
    first_g, _, _ = build.build_models(tiny_config)
    first_sampler = sampling.make_sampler(tiny_config)
    first_chunk = chunk.resident_train_chunk(tiny_config)
    wider = models.Architecture(lambda c: (dense.Generator(hidden=(24, 32), image_shape=c.image_shape),
                                           dense.Discriminator(hidden=c.d_hidden)))
    monkeypatch.setitem(models.ARCHITECTURES, "dense", wider)
    monkeypatch.setitem(losses.LOSSES, "ns", losses.Loss(_sq_hinge_d, _sq_hinge_g))
    g, _, _ = build.build_models(tiny_config)
    assert g.hidden == (24, 32) and first_g.hidden == tiny_config.g_hidden
    assert build.parts(tiny_config).loss.d is _sq_hinge_d
    assert sampling.make_sampler(tiny_config) is not first_sampler
    assert chunk.resident_train_chunk(tiny_config) is not first_chunk
    state = build.create_train_state(tiny_config, jax.random.PRNGKey(0))
    assert state.g_params["Dense_0"]["kernel"].shape == (tiny_config.latent_dim, 24)


@pytest.mark.parametrize("start", sorted(schedules.ENDS))
def test_every_schedulable_value_is_wired_in_the_places_the_readme_counts(start):
    """A schedulable step value: its start and end fields (population, traced in the step), its ENDS entry, the
    step's values holding both once the end is given, and at_iteration moving the start to the end."""
    end = schedules.ENDS[start]
    fields = {f.name: f for f in dataclasses.fields(config_lib.Config)}
    assert fields[start].metadata["traced"] == fields[end].metadata["traced"] == "step" and end == f"{start}_end"
    base = config_lib.Config()
    given = {"augment_p": {"augment": "color"}}.get(start, {})
    config = dataclasses.replace(base, **given, **{start: 0.25, end: 0.75, "iterations": 10})
    values = schedules.step_values(config)
    assert values[start] == 0.25 and values[end] == 0.75
    now = schedules.at_iteration(schedules.of(config), values, jnp.int32(10))
    assert float(now[start]) == pytest.approx(0.75)


def _gan_jax_imports(path: pathlib.Path) -> set[pathlib.Path]:
    """The gan_jax modules `path` imports at its top level (not under TYPE_CHECKING)."""
    found = set()
    for node in ast.parse(path.read_text()).body:
        names = []
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("gan_jax"):
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names if a.name.startswith("gan_jax")]
        for name in names:
            parts = name.split(".")[1:]
            if not parts:
                continue
            rel = pathlib.Path(*parts)
            for candidate in (PACKAGE / rel.with_suffix(".py"), PACKAGE / rel / "__init__.py"):
                if candidate.is_file() and candidate != path:
                    found.add(candidate)
    return found


def test_the_step_with_what_it_imports_reads_in_one_sitting_and_reads_no_config():
    """step.py and every gan_jax module it imports (transitively): at most 1,200 lines, no gan_jax.config among
    them; and no gan_jax module is over 400 lines."""
    seen, todo = set(), [PACKAGE / "step.py"]
    while todo:
        path = todo.pop()
        if path not in seen:
            seen.add(path)
            todo.extend(_gan_jax_imports(path))
    lines = sum(len(p.read_text().splitlines()) for p in seen)
    assert PACKAGE / "config.py" not in seen and lines <= 1200, (lines, sorted(p.name for p in seen))
    long = {str(p.relative_to(PACKAGE)): n for p in PACKAGE.rglob("*.py") if (n := len(p.read_text().splitlines())) > 400}
    assert not long


def test_config_sections_are_its_help_groups_and_it_imports_no_implementation():
    """Every Config field stands under the `# --- GROUP: ...` comment of its help group, the sections in GROUPS'
    order; config.py imports nothing from gan_jax but its checks and errors."""
    source = (PACKAGE / "config.py").read_text()
    tree = ast.parse(source)
    imported = {n.module for n in tree.body if isinstance(n, ast.ImportFrom) and (n.module or "").startswith("gan_jax")}
    assert imported == {"gan_jax.checks", "gan_jax.errors"}
    cls = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "Config")
    lines = source.splitlines()
    section, order = None, []
    fields = {f.name: f for f in dataclasses.fields(config_lib.Config)}
    for line_no in range(cls.lineno, cls.end_lineno + 1):
        line = lines[line_no - 1].strip()
        if line.startswith("# --- "):
            section = line[len("# --- "):].split(":")[0]
            order.append(section)
        for node in cls.body:
            if isinstance(node, ast.AnnAssign) and node.lineno == line_no:
                assert fields[node.target.id].metadata["group"] == section, node.target.id
    assert tuple(order) == config_lib.GROUPS
