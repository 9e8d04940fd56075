"""A REST capture paired with a WebSocket capture must be of the same venue and cover its symbols."""

from __future__ import annotations

from pathlib import Path

import pytest

from tickpath.cli.main import main
from tickpath.errors import ConfigError
from tickpath.sim import ReplayConfig
from tickpath.sim.replay import ReplaySource


def _first_line(path: Path) -> str:
    with path.open(encoding="utf-8") as fh:
        return fh.readline().rstrip("\n")


def test_matching_captures_load_every_symbol(shared_captures: Path) -> None:
    """The real futures pair loads, with snapshots for each of the four streamed symbols."""
    src = ReplaySource(ReplayConfig(shared_captures / "usdm_futures.ws.txt", shared_captures / "usdm_futures.http.txt"))
    assert set(src.snapshots) == {"SUSHIUSDT", "AKROUSDT", "KEEPUSDT", "CTKUSDT"}
    assert src.snapshot_body("SUSHIUSDT") is not None


@pytest.mark.parametrize(
    ("ws", "http", "found", "expected"),
    [
        ("usdm_futures.ws.txt", "spot.http.txt", "spot", "futures"),
        ("spot.ws.txt", "usdm_futures.http.txt", "futures", "spot"),
    ],
)
def test_rest_capture_of_other_venue_is_refused(
    shared_captures: Path, ws: str, http: str, found: str, expected: str
) -> None:
    """A REST capture recorded on the other venue is a ConfigError naming both venues."""
    with pytest.raises(ConfigError) as exc:
        ReplaySource(ReplayConfig(shared_captures / ws, shared_captures / http))
    msg = str(exc.value)
    assert f"is {found} data" in msg and f"is {expected}" in msg and http in msg


def test_loopback_recording_is_judged_by_its_path(shared_captures: Path, tmp_path: Path) -> None:
    """A capture recorded against a loopback simulator is told apart by its venue-specific path."""
    line = _first_line(shared_captures / "spot.http.txt")
    assert line.startswith("https://api.binance.com/api/v3/depth?")
    local = tmp_path / "local.http.txt"
    local.write_text(line.replace("https://api.binance.com", "http://127.0.0.1:9") + "\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="is spot data"):
        ReplaySource(ReplayConfig(shared_captures / "usdm_futures.ws.txt", local))


def test_rest_capture_without_any_streamed_symbol_is_refused(shared_captures: Path, tmp_path: Path) -> None:
    """Right venue but snapshots of none of the streamed symbols is a ConfigError listing both sides."""
    line = _first_line(shared_captures / "usdm_futures.http.txt")
    sym = line.split("symbol=", 1)[1].split("&", 1)[0]
    other = tmp_path / "other.http.txt"
    other.write_text(line.replace(f"symbol={sym}", "symbol=BTCUSDT") + "\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="no snapshot for any symbol") as exc:
        ReplaySource(ReplayConfig(shared_captures / "usdm_futures.ws.txt", other))
    assert "BTCUSDT" in str(exc.value) and "SUSHIUSDT" in str(exc.value)


def test_cli_refuses_mismatched_pair_at_start(shared_captures: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`tickpath sim` with a futures stream and a spot REST capture exits 2 at start with one clear line."""
    rc = main(
        [
            "sim",
            "--venue",
            "futures",
            "--replay",
            str(shared_captures / "usdm_futures.ws.txt"),
            "--replay-http",
            str(shared_captures / "spot.http.txt"),
            "--json",
            "--duration",
            "0.1",
        ]
    )
    out, err = capsys.readouterr()
    assert rc == 2
    assert out == ""  # no endpoints announced for a simulator that cannot serve
    assert "is spot data" in err and "Traceback" not in err
