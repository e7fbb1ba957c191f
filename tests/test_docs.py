"""The docs stay traceable: every file they link to or name exists, the README links every page of
docs/, and every raw result file they cite is committed under bench/results/."""

import os
import re

import pytest

from conftest import REPO

DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]

LINK = re.compile(r"\]\(([^)\s]+)\)")
"""A Markdown link's target: [text](target)."""

NAMED_PATH = re.compile(r"`((?:gan_jax|tests|bench|docs|\.ci)/[A-Za-z0-9_./-]*[A-Za-z0-9_])`")
"""A repository path written in backticks, e.g. `bench/results/loops.txt` or `gan_jax/step.py`."""


def _links(doc) -> list[str]:
    return [t for t in LINK.findall(doc.read_text()) if not t.startswith(("http://", "https://", "#", "mailto:"))]


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_every_linked_file_exists(doc):
    missing = [t for t in _links(doc) if not (doc.parent / t.split("#")[0]).exists()]
    assert not missing, f"{doc.name} links to files that do not exist: {missing}"


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_every_named_repository_path_exists(doc):
    names = NAMED_PATH.findall(doc.read_text())
    missing = [n for n in names if not (REPO / n).exists()]
    assert not missing, f"{doc.name} names paths that do not exist: {missing}"


def test_link_checks_can_fail(tmp_path):
    doc = tmp_path / "x.md"
    doc.write_text("see [a](missing.md) and [b](https://example.org) and `bench/results/nothing_here.txt`")
    assert _links(doc) == ["missing.md"]
    assert NAMED_PATH.findall(doc.read_text()) == ["bench/results/nothing_here.txt"]


def test_readme_links_every_doc():
    readme = REPO / "README.md"
    linked = {(REPO / t.split("#")[0]).resolve() for t in _links(readme)}
    unlinked = [p.name for p in (REPO / "docs").glob("*.md") if p.resolve() not in linked]
    assert not unlinked, f"docs not linked from README.md: {unlinked}"


def test_raw_results_cited_by_the_docs_are_committed_files():
    results = (REPO / "bench" / "results").resolve()
    cited = {(doc.parent / t.split("#")[0]).resolve() for doc in DOCS for t in _links(doc) if "bench/results/" in t}
    assert len(cited) >= 20  # the docs cite their raw outputs by link
    assert all(path.is_relative_to(results) and path.exists() for path in cited), sorted(map(str, cited))


TRAIN_COMMAND = re.compile(r"python -m gan_jax\.train((?: [^`|#;\n\"]*)?)")
"""A `python -m gan_jax.train ...` command in the docs, up to the end of its code span, line or comment."""


def _documented_train_commands() -> list[list[str]]:
    """Every documented train command's arguments, less those with placeholders (RUN, HOST:1234, P, ...)."""
    commands = set()
    for doc in DOCS:
        for args in TRAIN_COMMAND.findall(doc.read_text()):
            tokens = args.split()
            if any(t == "..." or re.fullmatch(r"[A-Z][A-Z0-9_:]*", t) for t in tokens) or "--help" in tokens:
                continue
            commands.add(tuple(tokens))
    return [list(c) for c in sorted(commands)]


def test_documented_train_commands_parse(capsys, tmp_path, monkeypatch):
    """Each train command the docs show resolves to a config (`--print-config`: no training, nothing
    written); `--distributed` ones need a cluster and are left out."""
    from gan_jax import train

    monkeypatch.chdir(tmp_path)

    commands = _documented_train_commands()
    assert len(commands) >= 10 and ["--preset", "dcgan"] in commands
    for args in (c for c in commands if "--distributed" not in c):
        assert train.main([*args, "--print-config"]) == 0, args
        assert capsys.readouterr().out.lstrip()[:1] in "{[", args  # one config, or a population's list
    assert os.listdir(tmp_path) == []
