"""Drive the pure-Python reference and the native core side by side and compare everything."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tickpath.venues.binance.parse import ParseError
from tickpath.venues.binance.processor import FrameProcessor, NativeProcessor, PureProcessor


@dataclass
class Pair:
    pure: FrameProcessor
    native: FrameProcessor
    steps: int = 0
    events: list[Any] = field(default_factory=list)

    @classmethod
    def make(cls, venue: str, **kw: Any) -> Pair:
        return cls(PureProcessor(venue, session="s", **kw), NativeProcessor(venue, session="s", **kw))  # type: ignore[arg-type]

    def _both(self, call: str, *args: Any) -> list[Any]:
        results = []
        for proc in (self.pure, self.native):
            try:
                results.append(("ok", getattr(proc, call)(*args)))
            except ParseError as exc:
                results.append(("error", exc.reason))
        self.steps += 1
        assert results[0] == results[1], (
            f"step {self.steps} {call}{args!r:.300}: pure {results[0]!r:.600} != native {results[1]!r:.600}"
        )
        assert self.pure.wants_snapshot == self.native.wants_snapshot, f"step {self.steps}: wants_snapshot"
        if results[0][0] == "ok":
            self.events.extend(results[0][1])
            if call == "on_frame" and results[0][1]:
                assert self.pure.last_event_ms == self.native.last_event_ms
        return results[0]

    def frame(self, raw: bytes | str, receipt_ns: int) -> Any:
        return self._both("on_frame", raw, receipt_ns)

    def snapshot(self, symbol: str, body: bytes | str, receipt_ns: int) -> Any:
        return self._both("on_snapshot", symbol, body, receipt_ns)

    def reset(self, symbol: str, reason: str, receipt_ns: int) -> Any:
        return self._both("reset", symbol, reason, receipt_ns)

    def check_state(self) -> None:
        assert self.pure.counts() == self.native.counts()
        assert sorted(self.pure.book_symbols()) == sorted(self.native.book_symbols())
        for s in self.pure.book_symbols():
            assert self.pure.book_state(s) == self.native.book_state(s), s
            assert self.pure.book_stats(s) == self.native.book_stats(s), s
            pb, pa = self.pure.book_top(s)
            nb, na = self.native.book_top(s)
            assert (list(pb), list(pa)) == (list(nb), list(na)), s
