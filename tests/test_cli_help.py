"""`wharf --help` as a newcomer reads it: no `<bool>` on flags, `--flag / --no-flag` where
both exist, and lines as wide as the terminal rather than cut at 80 columns."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.cli import Cli, new_cli
from wharf.cli.policy import VERBS

OUTPUT_HELP = (
    "json, yaml, name, wide, jsonpath=TEMPLATE, custom-columns=NAME:PATH,..., "
    "go-template=TEMPLATE, or template with --template"
)


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    return new_cli(tmp_path / "cli")


@pytest.mark.parametrize(
    "verb", [[], ["get"], ["serve"], ["policy", "add-role-to-user"], ["registry", "trust"]]
)
def test_help_has_no_bool_placeholders(cli: Cli, verb: list[str]) -> None:
    text = cli.ok(*verb, "--help")
    assert "Usage: wharf" in text
    assert "<bool>" not in text
    assert "…" not in text  # nothing cut off


def test_flags_with_a_negative_show_both(cli: Cli) -> None:
    text = cli.ok("serve", "--help")
    assert "--auth / --no-auth" in text
    assert "--registry-tls / --no-registry-tls" in text


def test_help_is_as_wide_as_the_terminal(cli: Cli) -> None:
    # The test's $COLUMNS is 200: the whole help of -o fits on its line.
    lines = cli.ok("get", "--help").splitlines()
    output = [line for line in lines if "--output" in line]
    assert len(output) == 1 and OUTPUT_HELP in output[0], lines
    assert max(len(line) for line in lines) > 100
    # In 80 columns, it wraps and nothing is lost.
    narrow = Cli(cli.kubeconfig, cli.cwd, {"COLUMNS": "80"}).ok("get", "--help")
    assert max(len(line) for line in narrow.splitlines()) <= 80
    words = " ".join(narrow.split())
    assert "jsonpath=TEMPLATE," in words and "NAME:PATH,..., go-" in words


@pytest.mark.parametrize("verb", [verb.name for verb in VERBS])
def test_each_policy_verb_takes_the_options_its_name_says(cli: Cli, verb: str) -> None:
    """The eight `policy` verbs come from one table: a verb on groups takes groups and no
    service accounts; a cluster-wide one takes no project (-n) and no --role-namespace."""
    text = cli.ok("policy", verb, "--help")
    usage = text.splitlines()[0]
    groups, cluster = verb.endswith("-group"), "cluster-role" in verb
    assert usage == f"Usage: wharf policy {verb} [OPTIONS] {{role}} " + (
        "{groups}..." if groups else "[users]..."
    )
    assert ("--serviceaccount" in text) is not groups
    assert ("--namespace" in text) is not cluster
    assert ("--role-namespace" in text) is not cluster
    assert "--rolebinding-name" in text
    first = "Add" if verb.startswith("add-") else "Remove"
    assert f"  {first} a {'cluster role' if cluster else 'role'} " in text
