"""Extending gan_jax: one of each thing a researcher adds (README, "Extending"), in the places the README's table
counts, and nothing a registry change can leave stale; the step's reading path and the config's layout."""

from __future__ import annotations

import ast
import dataclasses
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gan_jax import augment, build, chunk, config as config_lib, flags, losses, models, penalties, sampling, schedules
from gan_jax import step as step_lib
from gan_jax.models import dense

PACKAGE = pathlib.Path(__file__).resolve().parents[1] / "gan_jax"


def _sq_hinge_d(real_out, fake_out):
    return jnp.mean(jnp.square(jax.nn.relu(1.0 - real_out))), jnp.mean(jnp.square(jax.nn.relu(1.0 + fake_out)))


def _sq_hinge_g(fake_out, real_out):  # noqa: ARG001
    return -jnp.mean(fake_out)


ADDITIONS = """
import flax.linen as nn
import jax.numpy as jnp
import numpy as np
from gan_jax import augment, losses, models, orders, penalties
from gan_jax.models import dense

def sq_hinge_d(real_out, fake_out):
    return jnp.mean(jnp.square(jnp.maximum(0.0, 1.0 - real_out))), jnp.mean(jnp.square(jnp.maximum(0.0, 1.0 + fake_out)))

def sq_hinge_g(fake_out, real_out):
    return -jnp.mean(fake_out)

def fake_norm(d, real, fake, key):
    return jnp.mean(jnp.square(d(fake)))

class TinyD(nn.Module):
    @nn.compact
    def __call__(self, images, update_stats=False):
        return nn.Dense(1)(images.reshape((images.shape[0], -1)))[:, 0]

def g_twice(update_d, update_g, g, d):
    d, d_metrics = update_d(g, d)
    g, _ = update_g(g, d)
    g, g_metrics = update_g(g, d)
    return g, d, d_metrics, g_metrics

losses.LOSSES["sq_hinge"] = losses.Loss(sq_hinge_d, sq_hinge_g, lambda r, f: (
    np.mean(np.maximum(0, 1 - r) ** 2), np.mean(np.maximum(0, 1 + f) ** 2), -np.mean(f)))
penalties.PENALTIES["grad_sq"] = penalties.Penalty(
    lambda d, real, fake, key: jnp.mean(jnp.sum(jnp.square(penalties.input_gradients(d, fake)), axis=(1, 2, 3))),
    lambda grad, r, f, key: np.mean(np.sum(grad(f).reshape(f.shape[0], -1) ** 2, axis=1)), reads_fakes=True)
models.ARCHITECTURES["tiny"] = models.Architecture(
    lambda c: (dense.Generator(hidden=(16,), image_shape=c.image_shape), TinyD()),
    example=(("arch", "tiny"), ("latent_dim", 8)), params=(8 * 16 + 16 + 2 * 16 + 16 * 784 + 784, 784 + 1))
augment.AUGMENTS["negate"] = lambda images, key: -images
orders.UPDATE_ORDERS["g_twice"] = g_twice
"""
"""One of each thing a researcher adds, written as a module of its own would add them (README, "Extending")."""


def test_one_of_each_added_from_a_module_is_a_choice_is_tested_and_trains(tiny_config, tiny_data, tmp_path,
                                                                          monkeypatch):
    """A loss, a penalty, an architecture, an augmentation and an update order, each one entry added by a module of
    its own: the flags accept them, --help lists them, the config checks them, the suite's registry-wide tests test
    them (run here on the new names), and the step trains with them."""
    import importlib
    import sys

    import test_losses
    import test_models
    import test_penalties

    from gan_jax import orders

    (tmp_path / "my_additions.py").write_text(ADDITIONS)
    monkeypatch.syspath_prepend(str(tmp_path))
    for table, name in ((losses.LOSSES, "sq_hinge"), (penalties.PENALTIES, "grad_sq"), (models.ARCHITECTURES, "tiny"),
                        (augment.AUGMENTS, "negate"), (orders.UPDATE_ORDERS, "g_twice")):
        monkeypatch.setitem(table, name, None)  # undone (deleted) at the end of the test
    importlib.import_module("my_additions")
    monkeypatch.delitem(sys.modules, "my_additions")
    test_losses.test_each_loss_is_its_papers_formula("sq_hinge")
    test_losses.test_a_loss_is_declared_coupled_exactly_when_one_side_reads_the_other("sq_hinge")
    for d_name in test_penalties.D_WITH_GRADIENT:
        test_penalties.test_each_penalty_is_its_papers_formula("grad_sq", d_name)
    test_penalties.test_a_penalty_is_declared_to_read_the_fakes_exactly_when_it_does("grad_sq")
    test_models.test_every_architecture_has_its_declared_parameter_counts("tiny")
    test_models.test_every_architecture_maps_shapes_and_dtypes_under_each_conditioning("tiny", "none")
    parser = flags.OneLineParser(prog="t")
    flags.add_config_flags(parser)
    help_text = " ".join(parser.format_help().split())
    for name in ("sq_hinge", "grad_sq", "tiny", "negate", "g_twice"):
        assert name in help_text
    args = parser.parse_args(["--loss", "sq_hinge", "--penalty", "grad_sq", "--arch", "tiny", "--augment", "negate",
                              "--update-order", "g_twice"])
    parsed = flags.config_from_args(args, tiny_config)
    config = dataclasses.replace(parsed, penalty_weight=1.0, d_update="joint")
    assert (config.loss, config.penalty, config.arch, config.augment, config.update_order) == \
        ("sq_hinge", "grad_sq", "tiny", "negate", "g_twice")
    with pytest.raises(config_lib.UserError, match="--update-order must be one of"):
        dataclasses.replace(config, update_order="nope").validate()
    p = build.parts(config)
    assert p.loss is losses.LOSSES["sq_hinge"] and p.penalties == (penalties.PENALTIES["grad_sq"],)
    assert p.order is orders.UPDATE_ORDERS["g_twice"] and p.augments == (augment.AUGMENTS["negate"],)
    state = build.create_train_state(config, jax.random.PRNGKey(0))
    real = jnp.asarray(tiny_data.normalized(slice(0, 8)))
    new, metrics = jax.jit(build.make_train_step(config))(state, real, jax.random.PRNGKey(1))
    assert int(new.step) == 1 and float(metrics["d_penalty"]) > 0
    assert int(new.g.opt_state[0].count) == 2 and int(new.d.opt_state[0].count) == 1  # the order: G twice
    assert all(np.isfinite(float(v)) for v in metrics.values())


def _leaves_close(a, b):
    return all(np.allclose(x, y, rtol=1e-6, atol=1e-7) for x, y in
               zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b), strict=True))


@pytest.mark.slow
def test_the_update_orders_read_the_states_they_name(tiny_config, tiny_data):
    """One iteration under each order, from one state with one key: 'simultaneous' gives the D of 'd_then_g' (D's
    rounds on the same G) and the G of 'g_then_d' (G's update through the same D); 'g_then_d''s D differs from
    'd_then_g''s (its fakes come from the updated G), and 'd_then_g''s G from 'g_then_d''s (it sees the updated
    D). Each order's random draws are the same (the step's key streams), so only the states read differ."""
    real = jnp.asarray(tiny_data.normalized(slice(0, tiny_config.batch_size)))
    base = dataclasses.replace(tiny_config, adam_eps=1e-3)
    state = build.create_train_state(base, jax.random.PRNGKey(3))
    new = {}
    for order in ("d_then_g", "g_then_d", "simultaneous"):
        config = dataclasses.replace(base, update_order=order)
        new[order], _ = jax.jit(build.make_train_step(config))(state, real, jax.random.PRNGKey(7))
    assert _leaves_close(new["simultaneous"].d, new["d_then_g"].d)
    assert _leaves_close(new["simultaneous"].g, new["g_then_d"].g)
    assert not _leaves_close(new["g_then_d"].d.params, new["d_then_g"].d.params)
    assert not _leaves_close(new["d_then_g"].g.params, new["g_then_d"].g.params)
    assert config_lib.choices("update_order") == ("d_then_g", "g_then_d", "simultaneous")
    assert config_lib.Config().update_order == "d_then_g"  # the reference's


def test_a_step_setting_is_declared_once_and_read_in_the_step():
    """Parts copies no config field by hand: the step's settings are exactly the fields declared step=True
    (config.STEP_FIELDS, as Parts.settings), each read by step.py as settings.NAME or s.NAME (s = p.settings),
    and step.py reads no other field so."""
    import re

    config = config_lib.Config()
    p = build.parts(config)
    for f in dataclasses.fields(step_lib.Parts):  # same-named parts hold what the field names, not its value
        if hasattr(config, f.name):
            assert type(getattr(p, f.name)) is not type(getattr(config, f.name)), f.name  # loss: the Loss entry
    source = (PACKAGE / "step.py").read_text()
    read = set(re.findall(r"\b(?:p\.settings|settings|s)\.([a-z_]+)", source))
    assert read == set(config_lib.STEP_FIELDS), (read ^ set(config_lib.STEP_FIELDS))
    assert p.settings == config_lib.step_settings(config)


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
    assert state.g.params["Dense_0"]["kernel"].shape == (tiny_config.latent_dim, 24)


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


def test_the_step_and_what_it_imports_read_no_config():
    """step.py, orders.py and every gan_jax module they import (transitively): no gan_jax.config among them."""
    seen, todo = set(), [PACKAGE / "step.py", PACKAGE / "orders.py"]
    while todo:
        path = todo.pop()
        if path not in seen:
            seen.add(path)
            todo.extend(_gan_jax_imports(path))
    assert PACKAGE / "config.py" not in seen, sorted(p.name for p in seen)


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


@pytest.mark.parametrize("changes,needle", [
    ({"arch": "dcgan", "d_norm": "batch", "g_hidden": (10,)}, "--g-hidden is read by --arch dense, not by --arch dcgan"),
    ({"arch": "r3gan", "latent_dim": 64, "d_dropout": 0.4}, "--d-dropout is read by --arch dense, dcgan, not by"),
    ({"acgan_weight": 0.5}, "--acgan-weight 0.5 weighs AC-GAN's class loss, and --condition is none"),
    ({"fake_labels": "real"}, "--fake-labels real gives D's fakes the real batch's classes, and --condition is none"),
    ({"dcgan_widths": (256, 128, 64)}, "--dcgan-widths is read by --arch dcgan, not by --arch dense"),
    ({"init_optimizer": True}, "--init-optimizer takes the Adam states of --init-from's run"),
])
def test_a_setting_nothing_reads_is_refused_in_one_line(changes, needle):
    """gan_jax/checks.py's rule: a field that nothing reads under the chosen architecture or conditioning is an
    error naming the field (one line), not silently ignored; the same field where something reads it passes."""
    with pytest.raises(config_lib.UserError, match=needle.replace("-", r"\-")):
        dataclasses.replace(config_lib.Config(), **changes).validate()
    readers = {"g_hidden": {"arch": "dense"}, "d_dropout": {"arch": "dense"}, "acgan_weight": {"condition": "acgan"},
               "fake_labels": {"condition": "concat"}, "dcgan_widths": {"arch": "dcgan", "d_norm": "batch"},
               "init_optimizer": {"init_from": "runs/any"}}
    field = next(k for k in changes if k in readers)
    dataclasses.replace(config_lib.Config(), **{field: changes[field], **readers[field]}).validate()
