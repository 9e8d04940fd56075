"""run_probe end to end against local servers: figures, schema, and bad input per method."""

from __future__ import annotations

import orjson

from tests.probe.conftest import LocalVenue, serve_local_venue
from tests.virtual_time import virtual_time
from tickpath.clock import VirtualClock
from tickpath.probe import SCHEMA, ProbeConfig, run_probe


def _cfg(v: LocalVenue, methods: tuple[str, ...], **kw: object) -> ProbeConfig:
    base: dict[str, object] = dict(
        venue="futures",
        methods=methods,
        rest_url=v.rest_url,
        ws_url=v.ws_url,
        samples=20,
        rate=50.0,
        warmup=2,
        timeout=1.0,
        offset_samples=10,
        stream_duration=0.5,
        imds=False,
        chrony=False,
        dns_samples=2,
    )
    base.update(kw)
    return ProbeConfig(**base)  # type: ignore[arg-type]


# Real clock: the round trips measured here are real ones (in virtual time they would be 0).
async def test_all_socket_methods_measure_every_sample(local_venue: LocalVenue) -> None:
    """dns, tcp, rest, ws and stream each record their samples with no loss against a healthy venue."""
    result = await run_probe(_cfg(local_venue, ("dns", "tcp", "rest", "ws", "stream"), rate=200.0, stream_duration=0.3))
    assert result.errors == [] and result.exit_code == 0
    data = orjson.loads(result.to_json())
    assert data["schema"] == SCHEMA
    for method in ("tcp", "rest", "ws"):
        s = data["methods"][method]["summary"]
        assert s["count"] == 20 and s["losses"] == 0, method
        assert 0 < s["p50"] < 100_000, method
        assert list(data["methods"][method]["per_ip"]) in (["127.0.0.1"], [f"127.0.0.1:{local_venue.port}"])
    assert data["methods"]["dns"]["hosts"]["127.0.0.1"]["a"] == ["127.0.0.1"]
    stream = data["methods"]["stream"]
    assert set(stream["per_type"]) == {"aggTrade", "bookTicker", "depth"}
    assert stream["messages"] > 0 and stream["summary"]["count"] > 0


@virtual_time
async def test_stream_latency_is_corrected_by_the_estimated_offset(virtual_clock: VirtualClock) -> None:
    """An exchange clock 250 ms ahead makes raw latency ~-250 ms; the corrected figure is ~0 within the bound."""
    async with serve_local_venue(virtual_clock) as local_venue:
        local_venue.offset_ms = 250
        result = await run_probe(_cfg(local_venue, ("stream",)), clock=virtual_clock)
        assert result.offset is not None
        assert abs(result.offset.offset_ns - 250_000_000) <= result.offset.bound_ns
        depth = result.to_dict()["methods"]["stream"]["per_type"]["depth"]["E"]
        assert depth["raw_median_signed"] < -240_000  # µs: the local clock looks 250 ms late
        # Local delivery takes well under the bound; the corrected median sits within the stated bound.
        assert abs(depth["corrected_median_signed"]) <= depth["bound_us"] + 5_000


@virtual_time
async def test_refused_port_fails_its_methods_and_others_still_run(virtual_clock: VirtualClock) -> None:
    """A closed port: tcp/rest/ws report losses and errors, dns still measured, exit code non-zero."""
    async with serve_local_venue(virtual_clock):
        v = LocalVenue(1, "http://127.0.0.1:1", "ws://127.0.0.1:1")
        result = await run_probe(_cfg(v, ("dns", "tcp", "rest", "ws"), samples=5), clock=virtual_clock)
        data = result.to_dict()
        assert result.exit_code != 0
        assert data["methods"]["dns"]["summary"]["count"] == 2
        assert data["methods"]["tcp"]["summary"]["losses"] == 5
        failed = {e["method"] for e in data["errors"]}
        assert {"tcp", "rest", "ws"} <= failed
        assert all("refused" in e["message"].lower() or "failed" in e["message"].lower() for e in data["errors"])


@virtual_time
async def test_unresolvable_host_is_a_clear_resolution_error(virtual_clock: VirtualClock) -> None:
    """A host that does not resolve gives one ResolutionError per method, exit 4, and a result."""
    cfg = ProbeConfig(
        methods=("dns", "tcp", "ws"), host="no-such-host.invalid", samples=3, warmup=0, imds=False, chrony=False
    )
    result = await run_probe(cfg, clock=virtual_clock)
    assert result.exit_code == 4
    errors = result.to_dict()["errors"]
    assert errors[0]["error"] == "ResolutionError" and "no-such-host.invalid" in errors[0]["message"]
    assert {e["method"] for e in errors} >= {"dns", "tcp", "ws"}


@virtual_time
async def test_refused_websocket_upgrade_keeps_rest_results(virtual_clock: VirtualClock) -> None:
    """A refused WS upgrade is a HandshakeError for ws; REST round trips are still measured."""
    async with serve_local_venue(virtual_clock) as local_venue:
        local_venue.ws_refuse = True
        result = await run_probe(_cfg(local_venue, ("rest", "ws")), clock=virtual_clock)
        data = result.to_dict()
        assert data["methods"]["rest"]["summary"]["count"] == 20
        ws_errors = [e for e in data["errors"] if e["method"] == "ws"]
        assert ws_errors and ws_errors[0]["error"] == "HandshakeError" and "403" in ws_errors[0]["message"]
        assert result.exit_code == 4


@virtual_time
async def test_exchange_error_on_server_time_is_reported(virtual_clock: VirtualClock) -> None:
    """HTTP 500 from the time endpoint is an ExchangeError; the ping round trips still count."""
    async with serve_local_venue(virtual_clock) as local_venue:
        local_venue.time_status = 500
        result = await run_probe(_cfg(local_venue, ("rest",)), clock=virtual_clock)
        data = result.to_dict()
        assert data["methods"]["rest"]["summary"]["count"] == 20
        assert data["errors"][0]["error"] == "ExchangeError" and data["errors"][0]["exit_code"] == 5
        assert data["clock"]["offset"] is None


@virtual_time
async def test_server_stall_is_visible_at_the_tail(virtual_clock: VirtualClock) -> None:
    """One answer held 300 ms is a 300 ms sample at the tail, not a lost or hidden one."""
    async with serve_local_venue(virtual_clock) as local_venue:
        local_venue.stall_s = 0.3
        result = await run_probe(
            _cfg(local_venue, ("rest",), venue="spot", samples=60, rate=50.0, warmup=0, timeout=2.0),
            clock=virtual_clock,
        )
        s = result.stats["rest"].overall.summary()
        assert s.count == 60 and s.losses == 0
        assert s.max_ns >= 290_000_000 and s.p999_ns >= 290_000_000
        assert s.p50_ns < 100_000_000  # the schedule did not wait for the stalled answer


@virtual_time
async def test_silent_stream_is_an_exchange_error(virtual_clock: VirtualClock) -> None:
    """A stream that delivers no events is reported (exit 5), not a silent empty result."""
    async with serve_local_venue(virtual_clock) as local_venue:
        local_venue.silent = True
        result = await run_probe(_cfg(local_venue, ("stream",), stream_duration=0.3), clock=virtual_clock)
        errors = result.to_dict()["errors"]
        assert result.exit_code == 5 and errors[0]["method"] == "stream" and "no market data" in errors[0]["message"]


@virtual_time
async def test_tls_without_addresses_is_an_error_not_a_skip(virtual_clock: VirtualClock) -> None:
    """TLS endpoints whose host does not resolve give a tls error, not 'skipped: no TLS'."""
    cfg = ProbeConfig(methods=("tls",), host="no-such-host.invalid", samples=2, warmup=0, imds=False, chrony=False)
    result = await run_probe(cfg, clock=virtual_clock)
    data = result.to_dict()
    assert any(e["method"] == "tls" and e["error"] == "ResolutionError" for e in data["errors"])
    assert "tls" not in data["methods"] or "note" not in data["methods"]["tls"]
