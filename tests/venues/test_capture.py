"""The capture format: the shared real captures read completely, and written captures round-trip."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from tickpath.errors import ConfigError
from tickpath.venues.binance.capture import (
    CaptureWriter,
    read_http_capture,
    read_ws_capture,
)


def test_reads_both_shared_ws_captures(shared_captures: Path) -> None:
    """Every frame of both real captures is read, with its stream envelope intact."""
    fut = read_ws_capture(shared_captures / "usdm_futures.ws.txt")
    spot = read_ws_capture(shared_captures / "spot.ws.txt")
    assert len(fut.frames) == 1535 and len(spot.frames) == 265
    assert "sushiusdt@depth@100ms" in fut.streams and "nknusdt@aggTrade" in spot.streams
    assert all("stream" in json.loads(f.text) for f in fut.frames)
    assert fut.frames[0].receipt > fut.opened_at


def test_reads_http_capture(shared_captures: Path) -> None:
    """Snapshot records carry the path, the symbol and a lastUpdateId body."""
    recs = read_http_capture(shared_captures / "usdm_futures.http.txt")
    assert {r.params["symbol"] for r in recs} >= {"SUSHIUSDT", "AKROUSDT", "KEEPUSDT", "CTKUSDT"}
    assert all(r.path == "/fapi/v1/depth" for r in recs)
    assert "lastUpdateId" in json.loads(recs[0].body)


def test_writer_round_trips(tmp_path: Path) -> None:
    """What CaptureWriter writes, the readers read back identically."""
    ws_path, http_path = tmp_path / "x.ws.txt", tmp_path / "x.http.txt"
    with ws_path.open("w") as ws, http_path.open("w") as http:
        w = CaptureWriter(ws, http)
        w.ws_opened("wss://h/stream?streams=a@trade/b@trade", 10.5)
        w.ws_frame(11.25, '{"stream":"a@trade","data":{"x": "1: 2"}}')
        w.http("https://h/api/v3/depth?symbol=A&limit=5", 12.0, '{"lastUpdateId":1}')
    cap = read_ws_capture(ws_path)
    assert cap.streams == ["a@trade", "b@trade"] and cap.opened_at == 10.5
    assert cap.frames[0].text == '{"stream":"a@trade","data":{"x": "1: 2"}}'
    assert read_http_capture(http_path)[0].params == {"symbol": "A", "limit": "5"}
    CaptureWriter(io.StringIO(), None).flush()


def test_malformed_capture_is_a_clear_error(tmp_path: Path) -> None:
    """A broken header or line names the file and line; a missing file is a ConfigError."""
    bad = tmp_path / "bad.ws.txt"
    bad.write_text("no header here\n")
    with pytest.raises(ConfigError, match=r"bad\.ws\.txt:1"):
        read_ws_capture(bad)
    bad.write_text("wss://x <-> 1\nnot-a-number: {}\n")
    with pytest.raises(ConfigError, match=":2"):
        read_ws_capture(bad)
    with pytest.raises(ConfigError, match="cannot read"):
        read_ws_capture(tmp_path / "missing.ws.txt")


def test_a_capture_that_is_not_utf8_is_a_config_error(tmp_path: Path) -> None:
    """Found by `make fuzz` (capture target): invalid UTF-8 escaped as UnicodeDecodeError."""
    from tickpath.errors import ConfigError
    from tickpath.venues.binance.capture import read_http_capture, read_ws_capture

    p = tmp_path / "c.txt"
    p.write_bytes(b"\xfbwss://x <-> 1.0\n")
    for reader in (read_ws_capture, read_http_capture):
        with pytest.raises(ConfigError, match="invalid UTF-8"):
            reader(p)
