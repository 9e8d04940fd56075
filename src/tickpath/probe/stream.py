"""One-way market-data latency: receipt time minus the exchange's event time, per stream type.

Raw figures compare our wall clock with the exchange's, so they carry the clock offset between the
two; corrected figures add the offset estimated from the server-time endpoint, and are good to
within that estimate's bound plus half a millisecond, because Binance stamps events in whole
milliseconds (each stamp is centred in its millisecond here). Sub-millisecond differences between
locations are below what these timestamps can show; use the RTT methods for those.

Values are kept as signed integers until the end: a raw latency can be negative when the local
clock is behind the exchange's, and a histogram cannot hold negatives.
"""

from __future__ import annotations

import asyncio
import statistics
from dataclasses import dataclass, field
from typing import Any

import orjson

from tickpath.clock import Clock
from tickpath.probe.clock_offset import HALF_MS, MS, OffsetEstimate
from tickpath.probe.connect import ConnectionPool, ws_setup
from tickpath.probe.schedule import summarize
from tickpath.stats import LatencyRecorder

RESOLUTION_NOTE = (
    "exchange event times are whole milliseconds: one-way figures cannot resolve "
    "differences below ~1 ms; compare locations on the RTT methods for that"
)


@dataclass
class StreamSeries:
    """Signed raw latencies (ns) of one stream type and one timestamp field (E or T)."""

    label: str
    stamp: str  # which exchange timestamp: E (event) or T (trade/transaction)
    raw_ns: list[int] = field(default_factory=list)

    def recorders(self, offset: OffsetEstimate | None) -> tuple[LatencyRecorder, LatencyRecorder | None]:
        raw = LatencyRecorder(f"{self.label}.{self.stamp}.raw")
        raw.record_many(self.raw_ns)
        if offset is None:
            return raw, None
        corrected = LatencyRecorder(f"{self.label}.{self.stamp}.corrected")
        corrected.record_many(v + offset.offset_ns for v in self.raw_ns)
        return raw, corrected

    def to_dict(self, offset: OffsetEstimate | None, unit: str = "us") -> dict[str, Any]:
        raw, corrected = self.recorders(offset)
        out: dict[str, Any] = {
            "count": len(self.raw_ns),
            "raw": summarize(raw, sum(self.raw_ns)).to_dict(unit),
            "raw_median_signed": round(statistics.median(self.raw_ns) / 1e3, 3) if self.raw_ns else None,
            "raw_histogram": raw.encode(),
        }
        if corrected is not None and offset is not None:
            shifted = sum(self.raw_ns) + offset.offset_ns * len(self.raw_ns)
            out["corrected"] = summarize(corrected, shifted).to_dict(unit)
            out["corrected_median_signed"] = (
                round((statistics.median(self.raw_ns) + offset.offset_ns) / 1e3, 3) if self.raw_ns else None
            )
            out["corrected_histogram"] = corrected.encode()
            out["bound_us"] = round((offset.bound_ns + HALF_MS) / 1e3, 3)
        return out


@dataclass
class StreamResult:
    ip: str
    streams: dict[str, str]  # stream name -> label
    series: dict[tuple[str, str], StreamSeries] = field(default_factory=dict)
    messages: int = 0
    without_time: int = 0
    unparsable: int = 0
    seconds: float = 0.0
    error: str | None = None  # set when the stream ended early; what arrived is kept

    def on_message(self, payload: bytes, recv_wall_ns: int) -> None:
        # Hot path: no logging, no allocation beyond the parse; everything is counted.
        self.messages += 1
        try:
            msg = orjson.loads(payload)
        except orjson.JSONDecodeError:
            self.unparsable += 1
            return
        if not isinstance(msg, dict):
            self.unparsable += 1
            return
        name = msg.get("stream")
        data = msg.get("data", msg) if name is not None else msg
        if not isinstance(data, dict):
            self.unparsable += 1
            return
        label = self.streams.get(name) if isinstance(name, str) else None
        if label is None:
            label = str(data.get("e") or "unknown")
        found = False
        for fld in ("E", "T"):
            stamp = data.get(fld)
            if isinstance(stamp, int):
                found = True
                key = (label, fld)
                series = self.series.get(key)
                if series is None:
                    series = self.series[key] = StreamSeries(label, fld)
                series.raw_ns.append(recv_wall_ns - stamp * MS - HALF_MS)
        if not found:
            self.without_time += 1

    def to_dict(self, offset: OffsetEstimate | None, unit: str = "us") -> dict[str, Any]:
        per_type: dict[str, dict[str, Any]] = {}
        for (label, fld), series in sorted(self.series.items()):
            per_type.setdefault(label, {})[fld] = series.to_dict(offset, unit)
        return {
            "ip": self.ip,
            "streams": sorted(self.streams),
            "seconds": round(self.seconds, 3),
            "messages": self.messages,
            "without_event_time": self.without_time,
            "unparsable": self.unparsable,
            "per_type": per_type,
            "error": self.error,
            "note": RESOLUTION_NOTE,
        }

    def headline(self, offset: OffsetEstimate | None) -> LatencyRecorder:
        """All E-based latencies in one recorder (corrected when an offset is known)."""
        return self._headline(offset)[0]

    def _headline(self, offset: OffsetEstimate | None) -> tuple[LatencyRecorder, int]:
        rec = LatencyRecorder("stream")
        shift = offset.offset_ns if offset else 0
        total = 0
        for (_label, fld), series in self.series.items():
            if fld == "E":
                rec.record_many(v + shift for v in series.raw_ns)
                total += sum(series.raw_ns) + shift * len(series.raw_ns)
        return rec, total

    def headline_summary(self, offset: OffsetEstimate | None) -> tuple[LatencyRecorder, dict[str, Any]]:
        rec, total = self._headline(offset)
        return rec, summarize(rec, total).to_dict()


def stream_result(ip: str, streams: tuple[tuple[str, str], ...]) -> StreamResult:
    """An empty result for ``streams`` (label, name) on ``ip``, for :func:`capture_stream` to fill."""
    return StreamResult(ip, {name: label for label, name in streams})


async def capture_stream(clock: Clock, pool: ConnectionPool, result: StreamResult, seconds: float) -> StreamResult:
    """Subscribe to ``result``'s streams on one combined-stream connection for ``seconds``, filling
    ``result`` as messages arrive. The caller owns ``result``: when the capture is cancelled (Ctrl-C)
    what arrived so far is in it, with ``seconds`` set to how long it ran."""
    ip = result.ip
    path = "/stream?streams=" + "/".join(result.streams)
    pool.setup = ws_setup(pool.ep, path)
    proto, _ = await pool.get(ip)
    proto.on_message = result.on_message
    start = clock.monotonic_ns()
    try:
        await asyncio.wait_for(asyncio.shield(proto.closed), timeout=seconds)
    except TimeoutError:
        pass  # the normal end: the capture ran its full duration
    else:
        result.error = f"stream closed after {(clock.monotonic_ns() - start) / 1e9:.1f} s: {proto.close_reason}"
    finally:
        proto.on_message = None
        pool.close()
        result.seconds = (clock.monotonic_ns() - start) / 1e9
    return result
