"""The top-level command line: its help lists every command without loading them all."""

from __future__ import annotations

import argparse
import subprocess
import sys

import pytest

from tickpath.cli.main import SUBCOMMANDS, build_parser, main


def _choices(parser: argparse.ArgumentParser) -> dict[str, str]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return {a.dest: a.help or "" for a in action._choices_actions}
    raise AssertionError("no subcommands")


def test_summaries_listed_by_help_are_the_ones_each_command_registers() -> None:
    """The summary table in main.py matches what every command module registers (no drift)."""
    assert _choices(build_parser()) == SUBCOMMANDS
    assert _choices(build_parser(light=True)) == SUBCOMMANDS


def test_help_does_not_import_the_command_modules() -> None:
    """``tickpath --help`` loads no subcommand module (they pull in aiohttp, DuckDB, pyarrow)."""
    code = (
        "import sys\nfrom tickpath.cli.main import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "loaded = sorted(m for m in sys.modules if m.startswith('tickpath.cli.') and m not in "
        "('tickpath.cli.main', 'tickpath.cli.defaults'))\n"
        "print('LOADED', loaded, 'aiohttp' in sys.modules, 'duckdb' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "LOADED [] False False" in out


def test_a_command_runs_with_only_its_own_module_loaded(capsys: pytest.CaptureFixture[str]) -> None:
    """Running one command parses its full option set; other commands stay listed for the error text."""
    with pytest.raises(SystemExit) as exc:
        main(["dq", "--help"])
    assert exc.value.code == 0
    assert "--check" in capsys.readouterr().out
    assert main(["-v", "dq", "--db", "/nonexistent/x.duckdb"]) != 0
    parser = build_parser("dq")
    assert set(_choices(parser)) == set(SUBCOMMANDS)
