"""Every resolved address traced (bounded in parallel), hops matched to CDN networks from the checked-in
prefix table, and the address the TCP/WS figures favour marked."""

from __future__ import annotations

import ipaddress
import itertools
import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import orjson
import pytest
from aiohttp import web
from rich.console import Console

from tests.probe.conftest import LocalVenue, make_app
from tickpath.probe import ProbeConfig, run_probe
from tickpath.probe.dns import detect_edge_by_address, resolve
from tickpath.probe.networks import NETWORKS, classify
from tickpath.probe.path import annotate_hops, favour, parse_mtr_json, parse_traceroute, trace_all
from tickpath.probe.report import render_table

# A recorded traceroute from an EC2 instance to an address behind CloudFront (addresses as recorded).
TRACEROUTE_CF = """\
traceroute to 13.225.1.2 (13.225.1.2), 30 hops max, 60 byte packets
 1  * * *
 2  100.65.10.1  0.512 ms  0.498 ms 100.65.10.33  0.477 ms
 3  10.1.0.5  0.713 ms  0.701 ms  0.699 ms
 4  52.93.1.1  0.950 ms  1.001 ms  0.980 ms
 5  13.225.1.2  1.532 ms  1.498 ms  1.511 ms
"""
# A recorded mtr --json to an address behind Cloudflare.
MTR_CF = """{"report": {"mtr": {"src": "vm", "dst": "104.18.2.3", "tests": 5},
 "hubs": [{"count": 1, "host": "192.168.1.1", "Loss%": 0.0, "Snt": 5, "Last": 0.4, "Avg": 0.41,
           "Best": 0.37, "Wrst": 0.52, "StDev": 0.04},
          {"count": 2, "host": "???", "Loss%": 100.0, "Snt": 5, "Last": 0.0, "Avg": 0.0,
           "Best": 0.0, "Wrst": 0.0, "StDev": 0.0},
          {"count": 3, "host": "162.158.4.1", "Loss%": 0.0, "Snt": 5, "Last": 2.1, "Avg": 2.2,
           "Best": 2.0, "Wrst": 2.5, "StDev": 0.1},
          {"count": 4, "host": "104.18.2.3", "Loss%": 0.0, "Snt": 5, "Last": 2.3, "Avg": 2.3,
           "Best": 2.2, "Wrst": 2.6, "StDev": 0.1}]}}"""


def test_known_cdn_addresses_are_named_with_their_asn_and_others_are_unknown() -> None:
    """CloudFront, Cloudflare (v4 and v6), Fastly and Akamai addresses are named; 8.8.8.8 is unknown."""
    assert classify("13.225.1.2") == {
        "provider": "AWS CloudFront",
        "asn": 16509,
        "kind": "cdn",
        "prefix": "13.224.0.0/14",
    }
    assert classify("104.18.2.3")["provider"] == "Cloudflare"  # type: ignore[index]
    assert classify("2606:4700::6810:1")["asn"] == 13335  # type: ignore[index]
    assert classify("151.101.65.69")["provider"] == "Fastly"  # type: ignore[index]
    assert classify("23.45.6.7")["provider"] == "Akamai"  # type: ignore[index]
    assert classify("8.8.8.8") is None and classify("not-an-ip") is None and classify(None) is None
    assert classify("127.0.0.2")["provider"] == "loopback"  # type: ignore[index]
    assert classify("100.65.10.1")["kind"] == "special" and classify("10.1.0.5")["kind"] == "special"  # type: ignore[index]


def test_the_prefix_table_parses_and_no_two_providers_claim_one_address() -> None:
    """Every checked-in prefix is a valid network and providers' prefixes never overlap."""
    nets = [(n.provider, ipaddress.ip_network(p)) for n in NETWORKS for p in n.prefixes]
    assert len(nets) > 80
    for (pa, a), (pb, b) in itertools.combinations(nets, 2):
        if pa != pb and a.version == b.version:
            assert not a.overlaps(b), f"{pa} {a} overlaps {pb} {b}"


def test_recorded_hops_are_annotated_and_the_cdn_entry_hop_found() -> None:
    """Hops get their network; the first hop inside a CDN is reported with its provider and ASN."""
    trace = {"hops": parse_traceroute(TRACEROUTE_CF)}
    edge = annotate_hops(trace)
    assert edge == {"hop": 5, "address": "13.225.1.2", "provider": "AWS CloudFront", "asn": 16509}
    assert trace["hops"][0]["network"] is None and trace["hops"][1]["network"]["kind"] == "special"
    mtr = {"hops": parse_mtr_json(MTR_CF)}
    assert annotate_hops(mtr) == {"hop": 3, "address": "162.158.4.1", "provider": "Cloudflare", "asn": 13335}
    assert mtr["hops"][1]["network"] is None


def _summary(p50: float, count: int = 10) -> dict[str, object]:
    return {"summary": {"count": count, "losses": 0, "p50": p50}}


def test_favoured_address_follows_ws_then_tcp_and_disagreement_is_shown() -> None:
    """ws favours .2 while tcp (over both ports) favours .3: overall .2 by ws.p50, agree False; an
    address whose samples were all lost is never favoured."""
    path = {"addresses": {ip: {"roles": ["ws"]} for ip in ("10.0.0.2", "10.0.0.3", "2606:4700::1")}}
    methods = {
        "ws": {"per_ip": {"10.0.0.2": _summary(500.0), "10.0.0.3": _summary(700.0), "2606:4700::1": _summary(1.0, 0)}},
        "tcp": {
            "per_ip": {
                "10.0.0.2:443": _summary(300.0),
                "10.0.0.2:9443": _summary(290.0),
                "10.0.0.3:443": _summary(250.0),
                "[2606:4700::1]:443": _summary(400.0),
            }
        },
    }
    fav = favour(path, methods)["favoured"]
    assert fav["ip"] == "10.0.0.2" and fav["by"] == "ws.p50" and fav["agree"] is False
    assert fav["tcp"] == {"ip": "10.0.0.3", "p50_us": 250.0, "measured": 3}
    assert path["addresses"]["10.0.0.2"] == {
        "roles": ["ws"],
        "figures_us": {"ws.p50": 500.0, "tcp.p50": 290.0},
        "favoured": True,
    }
    assert path["addresses"]["2606:4700::1"]["figures_us"] == {"tcp.p50": 400.0}
    assert favour({"addresses": {"10.0.0.9": {}}}, {})["favoured"]["ip"] is None


async def test_an_address_in_a_cdn_prefix_marks_the_host_as_fronted_without_any_lookup() -> None:
    """With no CNAME or reverse name to go by, the answer's address alone names the edge."""
    edge = detect_edge_by_address(["8.8.8.8", "104.18.2.3"])
    assert edge is not None and edge["provider"] == "Cloudflare" and "104.16.0.0/13" in edge["via"]
    assert detect_edge_by_address(["8.8.8.8", "127.0.0.1"]) is None
    res = await resolve("127.0.0.1")
    assert res.edge is None and res.to_dict()["networks"]["127.0.0.1"]["provider"] == "loopback"


FAKE_TOOL = """#!/bin/sh
# A stand-in traceroute/mtr that counts how many copies run at once: each waits (up to 5 s) for a
# second copy to start, so an unbounded caller would have many running together.
d="$TICKPATH_FAKE_DIR/running"; mkdir -p "$d"; touch "$d/$$"
i=0; while [ "$(ls "$d" | wc -l)" -lt 2 ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i+1)); done
ls "$d" | wc -l >>"$TICKPATH_FAKE_DIR/counts"; sleep 0.2; rm -f "$d/$$"
for host; do :; done
case "$0" in
  *mtr) printf '{"report": {"hubs": [{"count": 1, "host": "%s", "Loss%%": 0.0, "Snt": 5}]}}' "$host" ;;
  *) printf 'traceroute to %s (%s), 30 hops max\\n 1  %s  0.100 ms\\n' "$host" "$host" "$host" ;;
esac
"""


async def test_every_address_is_traced_and_at_most_parallel_tools_run_at_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Six addresses x two tools with parallel=2: each address gets its own hops, never more than two
    tool processes at a time (the stand-ins wait for company, so an unbounded run would show more)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("traceroute", "mtr"):
        (bin_dir / tool).write_text(FAKE_TOOL)
        (bin_dir / tool).chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("TICKPATH_FAKE_DIR", str(tmp_path))
    ips = {f"127.0.0.{i}": ["ws" if i < 4 else "rest"] for i in range(2, 8)}
    path = await trace_all(ips, parallel=2, timeout=30)
    assert list(path["addresses"]) == list(ips) and path["destination"] == "127.0.0.2"
    for ip, entry in path["addresses"].items():
        assert entry["traceroute"]["hops"][0]["addresses"] == [ip] and entry["mtr"]["hops"][0]["host"] == ip
        assert entry["roles"] == ips[ip] and entry["network"]["provider"] == "loopback"
    assert path["traceroute"] == path["addresses"]["127.0.0.2"]["traceroute"]
    counts = [int(n) for n in (tmp_path / "counts").read_text().split()]
    assert len(counts) == 12 and max(counts) == 2


@pytest.fixture
async def two_address_venue() -> AsyncIterator[LocalVenue]:
    """The local venue on 127.0.0.2 and 127.0.0.3 (one port): REST on .2, WebSocket on .3."""
    state = LocalVenue(0, "", "")
    runner = web.AppRunner(make_app(state))
    await runner.setup()
    first = web.TCPSite(runner, "127.0.0.2", 0)
    await first.start()
    port = first._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    await web.TCPSite(runner, "127.0.0.3", port).start()
    state.port, state.rest_url, state.ws_url = port, f"http://127.0.0.2:{port}", f"ws://127.0.0.3:{port}"
    try:
        yield state
    finally:
        await runner.cleanup()


@pytest.mark.integration
async def test_probe_traces_each_address_with_the_real_tools_and_marks_the_favoured_one(
    two_address_venue: LocalVenue,
) -> None:
    """tcp, ws and path against REST on 127.0.0.2 and WS on 127.0.0.3: the installed traceroute (and
    mtr when it can run) reach each address in one hop; the favoured address is the one with the lowest
    ws p50 (only .3 serves ws), and the text output says so."""
    if shutil.which("traceroute") is None:
        pytest.skip("traceroute is not installed (apt-get install traceroute)")
    v = two_address_venue
    cfg = ProbeConfig(
        methods=("tcp", "ws", "path"),
        rest_url=v.rest_url,
        ws_url=v.ws_url,
        samples=10,
        rate=50.0,
        warmup=1,
        timeout=1.0,
        path_max_hops=3,
        path_queries=1,
        imds=False,
        chrony=False,
    )
    result = await run_probe(cfg)
    data = orjson.loads(result.to_json())
    path = data["methods"]["path"]
    assert path["destination"] == "127.0.0.3"
    assert {ip: e["roles"] for ip, e in path["addresses"].items()} == {"127.0.0.3": ["ws"], "127.0.0.2": ["rest"]}
    for ip, entry in path["addresses"].items():
        assert entry["traceroute"]["hops"][0]["addresses"] == [ip]
        mtr = entry["mtr"]
        assert mtr["available"] is False or "error" in mtr or mtr["hops"][0]["host"] == ip
    tcp = {t.split(":")[0]: b["summary"]["p50"] for t, b in data["methods"]["tcp"]["per_ip"].items()}
    assert path["favoured"]["ip"] == "127.0.0.3" and path["favoured"]["by"] == "ws.p50"
    assert path["favoured"]["tcp"]["ip"] == min(tcp, key=lambda ip: (tcp[ip], ip))
    assert path["addresses"]["127.0.0.2"]["figures_us"] == {"tcp.p50": tcp["127.0.0.2"]}
    console = Console(record=True, width=200)
    render_table(result, console)
    text = console.export_text()
    assert "path to 127.0.0.3 (ws):" in text and "favoured address: 127.0.0.3 by ws.p50" in text
