"""traceroute and MTR output parsed into per-hop JSON; missing tools noted; real tools on loopback."""

from __future__ import annotations

import shutil

import pytest

from tickpath.probe.path import parse_mtr_json, parse_traceroute, run_mtr, run_traceroute

TRACEROUTE = """\
traceroute to 13.225.1.2 (13.225.1.2), 30 hops max, 60 byte packets
 1  10.0.0.1  0.412 ms  0.398 ms  0.377 ms
 2  * * *
 3  100.65.10.1  1.210 ms 100.65.10.33  1.402 ms *
 4  52.93.1.1  0.950 ms !H  1.001 ms !H  *
 5  13.225.1.2  1.532 ms  1.498 ms  1.511 ms
"""

MTR = """{"report": {"mtr": {"src": "vm", "dst": "13.225.1.2", "tests": 10},
 "hubs": [{"count": 1, "host": "10.0.0.1", "Loss%": 0.0, "Snt": 10, "Last": 0.4, "Avg": 0.41,
           "Best": 0.37, "Wrst": 0.52, "StDev": 0.04},
          {"count": 2, "host": "???", "Loss%": 100.0, "Snt": 10, "Last": 0.0, "Avg": 0.0,
           "Best": 0.0, "Wrst": 0.0, "StDev": 0.0}]}}"""


def test_traceroute_hops_parse_addresses_rtts_and_losses() -> None:
    """Each hop lists its addresses, RTTs in ms, lost probes and annotations like !H."""
    hops = parse_traceroute(TRACEROUTE)
    assert [h["hop"] for h in hops] == [1, 2, 3, 4, 5]
    assert hops[0]["addresses"] == ["10.0.0.1"] and hops[0]["rtts_ms"] == [0.412, 0.398, 0.377]
    assert hops[1]["addresses"] == [] and hops[1]["lost"] == 3 and hops[1]["sent"] == 3
    assert hops[2]["addresses"] == ["100.65.10.1", "100.65.10.33"] and hops[2]["lost"] == 1
    assert hops[3]["annotations"] == ["!H", "!H"] and hops[3]["rtts_ms"] == [0.95, 1.001]


def test_mtr_json_hops_parse_with_unknown_host_as_none() -> None:
    """MTR hubs become hops with loss and RTT stats; '???' becomes host None."""
    hops = parse_mtr_json(MTR)
    assert hops[0] == {
        "hop": 1,
        "host": "10.0.0.1",
        "loss_pct": 0.0,
        "sent": 10,
        "last_ms": 0.4,
        "avg_ms": 0.41,
        "best_ms": 0.37,
        "worst_ms": 0.52,
        "stdev_ms": 0.04,
    }
    assert hops[1]["host"] is None and hops[1]["loss_pct"] == 100.0


def test_mtr_garbage_is_a_clear_error() -> None:
    """Output that is not mtr JSON raises ValueError saying so."""
    with pytest.raises(ValueError, match="not mtr --json output"):
        parse_mtr_json("mtr: unable to get raw sockets")


async def test_missing_tool_is_noted_not_fatal() -> None:
    """A tool that is not installed yields available=False and a note, not an exception."""
    r = await run_traceroute("127.0.0.1", tool="tickpath-no-such-traceroute")
    assert r["available"] is False and "not installed" in r["note"]
    r = await run_mtr("127.0.0.1", tool="tickpath-no-such-mtr")
    assert r["available"] is False and "not installed" in r["note"]


@pytest.mark.integration
async def test_real_traceroute_to_loopback() -> None:
    """The installed traceroute reaches 127.0.0.1 in one hop."""
    if shutil.which("traceroute") is None:
        pytest.skip("traceroute is not installed (apt-get install traceroute)")
    r = await run_traceroute("127.0.0.1", max_hops=3, queries=2, timeout=20)
    assert r["hops"][0]["addresses"] == ["127.0.0.1"] and len(r["hops"][0]["rtts_ms"]) == 2


@pytest.mark.integration
async def test_real_mtr_to_loopback() -> None:
    """The installed mtr reports 127.0.0.1 as the single hop with no loss."""
    if shutil.which("mtr") is None:
        pytest.skip("mtr is not installed (apt-get install mtr-tiny)")
    r = await run_mtr("127.0.0.1", cycles=2, max_hops=3, timeout=20)
    if "error" in r:
        pytest.skip(f"mtr cannot run here: {r['error']}")
    assert r["hops"][0]["host"] == "127.0.0.1" and r["hops"][0]["loss_pct"] == 0.0


@pytest.mark.integration
async def test_path_method_in_a_probe_run() -> None:
    """run_probe's path method reports traceroute and mtr hops (or a note) for the target IP."""
    from tickpath.probe import ProbeConfig, run_probe

    if shutil.which("traceroute") is None:
        pytest.skip("traceroute is not installed (apt-get install traceroute)")
    cfg = ProbeConfig(
        methods=("path",),
        rest_url="http://127.0.0.1:1",
        ws_url="ws://127.0.0.1:1",
        path_max_hops=3,
        path_queries=1,
        imds=False,
        chrony=False,
    )
    result = await run_probe(cfg)
    path = result.to_dict()["methods"]["path"]
    assert path["destination"] == "127.0.0.1"
    assert path["traceroute"]["hops"][0]["addresses"] == ["127.0.0.1"]
    assert path["mtr"]["available"] is False or "hops" in path["mtr"] or "error" in path["mtr"]
