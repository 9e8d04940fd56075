"""Clock-offset estimation from server time, stream latency series, and host clock state."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from pathlib import Path

import orjson
import pytest
from aiohttp import web

from tests.support.http import serve_app
from tickpath.errors import ExchangeError
from tickpath.probe.clock_offset import MS, OffsetSample, estimate_offset, parse_server_time
from tickpath.probe.hoststate import clocksource, ec2_metadata, parse_chrony_tracking, ptp_clocks
from tickpath.probe.stream import StreamResult


def _samples(true_offset_ns: int, seed: int, n: int = 50) -> list[OffsetSample]:
    """Requests with 2-8 ms each way (asymmetric), server stamping whole ms of its own clock."""
    rng = random.Random(seed)
    out = []
    t = 1_700_000_000_000_000_000
    for _ in range(n):
        up, down = rng.randint(2 * MS, 8 * MS), rng.randint(2 * MS, 8 * MS)
        server_ms = (t + up + true_offset_ns) // MS
        out.append(OffsetSample(t, t + up + down, server_ms))
        t += 20 * MS
    return out


@pytest.mark.parametrize("offset_ms", [-731.4, 0.0, 12.25, 5000.9])
def test_offset_estimate_is_within_its_bound(offset_ms: float) -> None:
    """The true offset lies within the stated bound for asymmetric, jittered paths."""
    true = int(offset_ms * MS)
    for seed in range(5):
        est = estimate_offset(_samples(true, seed))
        assert abs(est.offset_ns - true) <= est.bound_ns
        assert est.bound_ns <= est.min_rtt_ns // 2 + 4 * MS  # uses the fast samples, not the slow ones
        assert est.used >= 3


def test_server_time_parse_errors_are_exchange_errors() -> None:
    """A body without an integer serverTime is an ExchangeError."""
    assert parse_server_time(b'{"serverTime": 1700000000123}') == 1700000000123
    for bad in (b"<html>", b'{"code": -1}', b'{"serverTime": "x"}'):
        with pytest.raises(ExchangeError):
            parse_server_time(bad)


def test_stream_result_groups_by_type_and_field_and_counts_oddities() -> None:
    """Receipt minus E and T per stream type; frames without times or unparsable are counted."""
    r = StreamResult("1.2.3.4", {"btcusdt@depth@100ms": "depth", "btcusdt@aggTrade": "aggTrade"})
    wall = 1_700_000_000_010 * MS
    r.on_message(orjson.dumps({"stream": "btcusdt@depth@100ms", "data": {"E": 1_700_000_000_000}}), wall)
    r.on_message(
        orjson.dumps({"stream": "btcusdt@aggTrade", "data": {"E": 1_700_000_000_005, "T": 1_700_000_000_004}}), wall
    )
    r.on_message(orjson.dumps({"result": None, "id": 1}), wall)
    r.on_message(b"not json", wall)
    assert r.series[("depth", "E")].raw_ns == [10 * MS - MS // 2]
    assert r.series[("aggTrade", "T")].raw_ns == [6 * MS - MS // 2]
    assert r.without_time == 1 and r.unparsable == 1 and r.messages == 4


def test_chrony_tracking_csv_is_parsed() -> None:
    """chronyc -c tracking output becomes typed fields: source, stratum, offset."""
    line = (
        "A9FEA97B,169.254.169.123,3,1763800000.123456789,-0.000001234,0.000000567,0.000001000,"
        "-12.345,0.001,0.020,0.000345,0.000123,16.1,Normal\n"
    )
    t = parse_chrony_tracking(line)
    assert t["source"] == "169.254.169.123" and t["stratum"] == 3
    assert t["system_offset_s"] == pytest.approx(-1.234e-6) and t["leap_status"] == "Normal"
    with pytest.raises(ValueError):
        parse_chrony_tracking("506 Cannot talk to daemon")


def test_ptp_and_clocksource_from_a_fake_sys_root(tmp_path: Path) -> None:
    """A PTP hardware clock under /sys/class/ptp and the clocksource are read from the given root."""
    assert ptp_clocks(tmp_path) == [] and clocksource(tmp_path) is None
    (tmp_path / "sys/class/ptp/ptp0").mkdir(parents=True)
    (tmp_path / "sys/class/ptp/ptp0/clock_name").write_text("ena-ptp-0\n")
    cs = tmp_path / "sys/devices/system/clocksource/clocksource0"
    cs.mkdir(parents=True)
    (cs / "current_clocksource").write_text("kvm-clock\n")
    assert ptp_clocks(tmp_path) == [{"device": "/dev/ptp0", "clock_name": "ena-ptp-0"}]
    assert clocksource(tmp_path) == "kvm-clock"


@pytest.fixture
async def fake_imds() -> AsyncIterator[str]:
    """An IMDSv2-shaped server: a token from PUT is required for every metadata GET."""
    meta = {
        "instance-id": "i-0abc",
        "instance-type": "c7gn.large",
        "placement/availability-zone": "ap-northeast-1a",
        "placement/availability-zone-id": "apne1-az4",
        "placement/region": "ap-northeast-1",
    }

    async def token(request: web.Request) -> web.Response:
        assert request.headers["X-aws-ec2-metadata-token-ttl-seconds"]
        return web.Response(text="TOKEN123")

    async def get(request: web.Request) -> web.Response:
        if request.headers.get("X-aws-ec2-metadata-token") != "TOKEN123":
            return web.Response(status=401)
        return web.Response(text=meta[request.match_info["path"]])

    app = web.Application()
    app.router.add_put("/latest/api/token", token)
    app.router.add_get("/latest/meta-data/{path:.+}", get)
    async with serve_app(app) as url:
        yield url


async def test_ec2_metadata_via_imdsv2(fake_imds: str) -> None:
    """Instance id, type, AZ name and AZ ID come from IMDSv2 with a session token; no token is kept."""
    meta = await ec2_metadata(fake_imds, timeout=1.0)
    assert meta == {
        "instance_id": "i-0abc",
        "instance_type": "c7gn.large",
        "availability_zone": "ap-northeast-1a",
        "availability_zone_id": "apne1-az4",
        "region": "ap-northeast-1",
    }
    assert "TOKEN123" not in str(meta)


async def test_no_imds_means_no_ec2_metadata() -> None:
    """Off EC2 (nothing listening) the metadata is None, quickly."""
    assert await ec2_metadata("http://127.0.0.1:1", timeout=0.2) is None
