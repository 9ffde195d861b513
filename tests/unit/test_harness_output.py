"""The harness prints messages, hints and quoted logs verbatim: nothing in them is read as rich markup."""

from __future__ import annotations

from pathlib import Path

import click
import pytest
import yaml
from click.testing import CliRunner
from pydantic import BaseModel, Field, ValidationError

from harness.cli import _progress, handle_errors, main
from harness.errors import HarnessError, ServiceStartError

ROOT = Path(__file__).resolve().parents[2]
TRICKY = "a [bold]b[/bold] [/] [red]c[/red] [link=x]d[/link] :x: [app] e\\[f]"


def _fail_with(exc: HarnessError) -> str:
    @click.command()
    @handle_errors
    def failing() -> None:
        raise exc

    result = CliRunner().invoke(failing, [])
    assert result.exit_code == 1, result.output
    return result.output


def test_unknown_env_message_keeps_its_table_name() -> None:
    result = CliRunner().invoke(main, ["--topology", str(ROOT / "topology.toml"), "--env", "nosuch", "env"])
    assert result.exit_code == 1
    assert "add an [environments.nosuch] table" in result.output, result.output


def test_markup_in_message_and_hint_is_printed_verbatim() -> None:
    out = _fail_with(HarnessError(f"message {TRICKY}", hint=f"hint {TRICKY}"))
    assert f"error: message {TRICKY}" in out
    assert f"hint: hint {TRICKY}" in out


def test_a_quoted_yaml_error_keeps_its_brackets() -> None:
    with pytest.raises(yaml.YAMLError) as info:
        yaml.safe_load("users: [a, b\ntenants: []\n")
    quoted = str(info.value)
    assert "expected ',' or ']'" in quoted
    out = _fail_with(ServiceStartError(f"seed: failed; last lines:\n{quoted}", hint="fix [seed]"))
    assert "expected ',' or ']'" in out
    assert "fix [seed]" in out


def test_a_pydantic_pattern_error_keeps_its_character_class() -> None:
    class Item(BaseModel):
        slug: str = Field(pattern=r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")

    with pytest.raises(ValidationError) as info:
        Item(slug="Not A Slug")
    out = _fail_with(HarnessError(f"seed/seed.yaml: invalid seed file:\n{info.value}"))
    assert "^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$" in out


def test_progress_lines_print_component_and_message_verbatim(capsys: pytest.CaptureFixture[str]) -> None:
    _progress("[seed]", f"done {TRICKY}")
    err = capsys.readouterr().err
    assert "[seed]" in err and f"done {TRICKY}" in err


def test_deploy_progress_is_verbatim(capsys: pytest.CaptureFixture[str]) -> None:
    from harness.deploy.command import _progress as deploy_progress

    deploy_progress("[stage]", f"UPDATE {TRICKY}\nsecond [b]line[/b]")
    err = capsys.readouterr().err
    assert TRICKY in err and "second [b]line[/b]" in err and "[stage]" in err
