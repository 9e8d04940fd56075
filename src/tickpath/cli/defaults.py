"""Option defaults from a TOML file and the environment, for running commands as services.

Precedence: command line > environment > config file > built-in default. For ``tickpath feed``::

    TICKPATH_FEED_SYMBOLS=BTCUSDT,ETHUSDT          # any long option: TICKPATH_<COMMAND>_<OPTION>
    TICKPATH_FEED_SINK="duckdb:/data/ticks.duckdb nats://10.0.0.5:4222"   # repeatable: space-separated
    TICKPATH_CONFIG=/etc/tickpath/tickpath.toml    # or: tickpath --config FILE feed

    # tickpath.toml: one table per command, keys are the long option names
    [feed]
    venue = "futures"
    symbols = "BTCUSDT,ETHUSDT"
    sink = ["duckdb:/var/lib/tickpath/ticks.duckdb"]
    metrics-port = 9464

Commands with actions (``tickpath sweep status``, ``tickpath gcp setup``) also read
``TICKPATH_<COMMAND>_<ACTION>_<OPTION>`` (it wins over ``TICKPATH_<COMMAND>_<OPTION>``) and a
``[<command>.<action>]`` table (it wins over the plain keys of ``[<command>]``, which apply to
every action that has the option).
"""

from __future__ import annotations

import argparse
import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from tickpath.errors import ConfigError

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def load_config_file(path: str | Path) -> dict[str, Any]:
    p = Path(path)
    try:
        with p.open("rb") as fh:
            return tomllib.load(fh)
    except OSError as exc:
        raise ConfigError(f"cannot read config file {p}: {exc.strerror}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {p} is not valid TOML: {exc}") from exc


def env_name(command: str, option: str) -> str:
    return f"TICKPATH_{command}_{option}".upper().replace("-", "_")


def _long_name(action: argparse.Action) -> str | None:
    longs = [o for o in action.option_strings if o.startswith("--") and not o.startswith("--no-")]
    return longs[0][2:] if longs else None


def _convert(action: argparse.Action, raw: Any, where: str) -> Any:
    is_flag = isinstance(
        action, (argparse._StoreTrueAction, argparse._StoreFalseAction, argparse.BooleanOptionalAction)
    )
    if is_flag:
        if isinstance(raw, bool):
            return raw
        text = str(raw).strip().lower()
        if text in _TRUE | _FALSE:
            return text in _TRUE
        raise ConfigError(f"{where}: expected true or false, got {raw!r}")
    if isinstance(action, argparse._AppendAction):
        items = raw if isinstance(raw, list) else str(raw).split()
        return [_one(action, item, where) for item in items]
    return _one(action, raw, where)


def _one(action: argparse.Action, raw: Any, where: str) -> Any:
    value = raw
    if action.type is not None and isinstance(raw, str | int | float):
        try:
            value = action.type(str(raw)) if callable(action.type) else raw
        except (TypeError, ValueError, argparse.ArgumentTypeError) as exc:
            raise ConfigError(f"{where}: invalid value {raw!r}: {exc}") from exc
    if action.choices is not None and value not in action.choices:
        raise ConfigError(f"{where}: {value!r} is not one of {', '.join(map(str, action.choices))}")
    return value


def option_names(parser: argparse.ArgumentParser) -> set[str]:
    """The long option names ``parser`` takes (what a config table or variable may set)."""
    return {n for a in parser._actions if (n := _long_name(a)) is not None and n != "help"}


def apply_defaults(
    parser: argparse.ArgumentParser,
    command: str,
    file_table: Mapping[str, Any],
    environ: Mapping[str, str] | None = None,
    *,
    table_name: str | None = None,
) -> None:
    """Set defaults of ``parser``'s options from ``file_table`` then the environment.

    ``command`` names the variables (``TICKPATH_<command>_<OPTION>``); ``table_name`` the table in
    error messages (default: ``command``)."""
    env = os.environ if environ is None else environ
    known: dict[str, argparse.Action] = {}
    for action in parser._actions:
        name = _long_name(action)
        if name is None or name in ("help",):
            continue
        known[name] = action
    unknown = [k for k in file_table if k not in known and k.replace("_", "-") not in known]
    if unknown:
        raise ConfigError(f"config file [{table_name or command}]: unknown option(s) {', '.join(sorted(unknown))}")
    for name, action in known.items():
        value: Any = None
        found = False
        for key in (name, name.replace("-", "_")):
            if key in file_table:
                value, found = _convert(action, file_table[key], f"config [{command}] {key}"), True
        var = env_name(command, name)
        if var in env:
            value, found = _convert(action, env[var], var), True
        if found:
            action.default = value
            action.required = False
