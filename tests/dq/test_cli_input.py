"""``tickpath dq`` refuses thresholds and times it cannot honour: one line naming the option, exit 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.dq.market import WINDOW, make_store
from tickpath.cli.dq import parse_time
from tickpath.cli.main import main
from tickpath.errors import ConfigError

SINCE, UNTIL = str(WINDOW[0] / 1e9), str(WINDOW[1] / 1e9)
NOW = 1_700_000_000 * 10**9


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    db = tmp_path_factory.mktemp("dq") / "ticks.duckdb"
    make_store(str(db)).close()
    return db


def _dq(store: Path, *extra: str) -> list[str]:
    return ["dq", "--db", str(store), "--since", SINCE, "--until", UNTIL, "--json", *extra]


def _one_line_error(capsys: pytest.CaptureFixture[str]) -> str:
    captured = capsys.readouterr()
    assert captured.out == ""  # refused before any check ran
    err = captured.err.strip()
    assert "Traceback" not in err and len(err.splitlines()) == 1, err
    return err


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("--p99-ms", "nan"),
        ("--p999-ms", "nan"),
        ("--min-completeness", "nan"),
        ("--l2-lag-cadences", "nan"),
        ("--max-session-silence", "nan"),
        ("--p99-ms", "inf"),
        ("--p999-ms", "inf"),
        ("--max-session-silence", "inf"),
        ("--p99-ms", "-1"),
        ("--p999-ms", "-0.5"),
        ("--max-gaps", "-1"),
        ("--max-resets", "-1"),
        ("--max-bytes-billed", "0"),
        ("--dead-after-cadences", "nan"),
        ("--min-busy-share", "-0.1"),
        ("--min-busy-share", "1.5"),
        ("--frozen-min-frames", "-1"),
        ("--dead-after", "trades"),
        ("--frozen-after", "ticker=soon"),
    ],
)
def test_threshold_that_switches_a_check_off_is_refused(
    store: Path, capsys: pytest.CaptureFixture[str], option: str, value: str
) -> None:
    """nan, inf or a negative limit exits 2 with one line naming the option, instead of a vacuous pass."""
    assert main(_dq(store, option, value)) == 2
    err = _one_line_error(capsys)
    assert option in err and value in err


@pytest.mark.parametrize(
    ("option", "value", "says"),
    [
        ("--dead-after", "trades=nan", "--dead-after trades must be a finite number >= 0"),
        ("--dead-after", "ticker=-5", "--dead-after ticker must be a finite number >= 0"),
        ("--dead-after", "l2=5", "--dead-after: 'l2' is no stream"),
        ("--dead-after", "futures/quotes=5", "--dead-after: 'futures/quotes' is no stream"),
        ("--frozen-after", "trades=5", "--frozen-after: 'trades' is no stream; give CHANNEL or VENUE/CHANNEL"),
    ],
)
def test_per_stream_limit_that_is_no_limit_is_refused(
    store: Path, capsys: pytest.CaptureFixture[str], option: str, value: str, says: str
) -> None:
    """A per-stream limit for a stream that has none, or that is no finite number >= 0: one line, exit 2."""
    assert main(_dq(store, option, value)) == 2
    assert says in _one_line_error(capsys)


def test_threshold_from_the_environment_is_checked_too(
    store: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A default from $TICKPATH_DQ_P99_MS=nan is refused like the command-line option."""
    monkeypatch.setenv("TICKPATH_DQ_P99_MS", "nan")
    assert main(_dq(store)) == 2
    assert "--p99-ms" in _one_line_error(capsys)


def test_zero_limits_are_accepted(store: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """0 is a valid (strict) limit: --max-gaps 0 on a clean store passes, so no finite limit >= 0 is refused."""
    assert main(_dq(store, "--max-gaps", "0", "--max-resets", "0", "--p99-ms", "1e9")) == 0
    assert '"ok": true' in capsys.readouterr().out


@pytest.mark.parametrize(
    ("option", "value", "says"),
    [
        ("--since", "1795390000000", "looks like milliseconds since 1970; give seconds (1795390000)"),
        ("--since", "1e12", "looks like milliseconds"),
        ("--until", "1795390000000000", "looks like microseconds"),
        ("--until", "1795390000000000000", "looks like nanoseconds"),
        ("--since", "99999999999999999999", "outside 1970-01-01 .. 2262-04-11"),
        ("--since", "inf", "is not a time"),
        ("--until", "nan", "is not a time"),
        ("--since", "-inf", "is not a time"),
        ("--since", "9999999999999d", "outside 1970-01-01"),
        ("--until", "9999-12-31", "outside 1970-01-01"),
    ],
)
def test_unusable_time_is_a_one_line_error(
    store: Path, capsys: pytest.CaptureFixture[str], option: str, value: str, says: str
) -> None:
    """A time in the wrong unit or out of range exits 2 with one line naming the option, no traceback."""
    args = ["dq", "--db", str(store), "--json", f"{option}={value}"]  # = lets "-inf" be a value
    assert main(args) == 2
    err = _one_line_error(capsys)
    assert f"{option} {value!r}" in err and says in err


def test_seconds_keep_their_full_precision() -> None:
    """Unix seconds with nine decimals and ISO times with microseconds convert to exact nanoseconds."""
    assert parse_time("1700000000.123456789", NOW) == 1_700_000_000_123_456_789
    assert parse_time("2023-11-14T22:13:20.000001Z", NOW) == NOW + 1_000
    assert parse_time("2023-11-14T23:13:20+01:00", NOW) == NOW


def test_time_error_names_the_option() -> None:
    """parse_time's errors name the option it is reading for."""
    with pytest.raises(ConfigError, match=r"^--until '1e12' looks like milliseconds"):
        parse_time("1e12", NOW, "--until")


def test_dead_and_frozen_limits_per_venue_reach_the_judge(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """--dead-after per venue decides: trades dead for 65 s fail both venues by default, only spot
    once futures may be silent for 100 s; --frozen-after decides a 20 s freeze the same way."""
    from tests.dq.market import Defects

    db = tmp_path / "dead.duckdb"
    make_store(str(db), defects=Defects(dead_channel="trades", dead_at_s=5, frozen_at_s=20, frozen_s=20)).close()

    def freshness(out: str) -> set[tuple[str, str]]:
        fresh = next(c for c in json.loads(out)["checks"] if c["name"] == "freshness")
        return {(f["issue"], f["venue"]) for f in fresh["findings"]}

    def findings(*extra: str) -> set[tuple[str, str]]:
        main(_dq(db, "--check", "freshness", *extra))  # the limits are freshness's: it alone is judged
        return freshness(capsys.readouterr().out)

    assert main(_dq(db)) == 9
    assert freshness(capsys.readouterr().out) == {("dead_stream", "futures"), ("dead_stream", "spot")}
    assert findings("--dead-after", "futures/trades=100") == {("dead_stream", "spot")}
    assert findings("--dead-after", "trades=100", "--frozen-after", "ticker=10") == {
        ("frozen_stream", "futures"),
        ("frozen_stream", "spot"),
    }
    assert (
        findings("--dead-after", "trades=100", "--frozen-after", "ticker=10", "--frozen-min-frames", "100000") == set()
    )
