"""The shipped service definitions match the real CLI: every variable in deploy/feed.env is an option
of `tickpath feed`, and the settings parse into a complete feed configuration."""

from __future__ import annotations

import argparse
import shlex
from pathlib import Path

from tickpath.cli.defaults import apply_defaults
from tickpath.cli.main import _subparser, build_parser

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"


def _env_file(path: Path) -> dict[str, str]:
    env = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            env[key] = " ".join(shlex.split(value))
    return env


def test_feed_env_parses_into_feed_arguments() -> None:
    """Each TICKPATH_FEED_* variable names a real option; with them `tickpath feed` needs no argument."""
    env = _env_file(DEPLOY / "feed.env")
    feed = _subparser(build_parser(), "feed")
    assert isinstance(feed, argparse.ArgumentParser)
    options = {o[2:].upper().replace("-", "_") for a in feed._actions for o in a.option_strings if o.startswith("--")}
    for key in env:
        assert key.startswith("TICKPATH_FEED_") and key[len("TICKPATH_FEED_") :] in options, key
    apply_defaults(feed, "feed", {}, env)
    args = feed.parse_args([])
    assert args.venue == "futures" and args.symbols.startswith("BTCUSDT")


def test_systemd_unit_and_image_run_the_feed() -> None:
    """The unit and the container both start `tickpath feed` and stop it with SIGTERM (which flushes)."""
    unit = (DEPLOY / "tickpath-feed.service").read_text()
    assert "ExecStart=/opt/tickpath/venv/bin/tickpath feed" in unit and "KillSignal=SIGTERM" in unit
    assert "EnvironmentFile=/etc/tickpath/feed.env" in unit
    # SIGTERM ends the feed with 130 after flushing: a clean stop, which systemd must not call failed.
    assert "SuccessExitStatus=130" in unit
    docker = (DEPLOY / "Dockerfile").read_text()
    assert 'ENTRYPOINT ["tickpath", "feed"]' in docker and "USER tickpath" in docker
