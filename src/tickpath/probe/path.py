"""The network path: traceroute and MTR run through the system tools, parsed into JSON per hop.

Both tools are optional: when one is not installed the result says so plainly and the other
methods are unaffected. Numeric output (``-n``) keeps the run fast and offline-safe; hop names
would add a reverse lookup per hop. MTR's own AS lookup (``-z``) is not used: it asks a DNS service
per hop, which a probe machine may not reach; hops are matched against tickpath's checked-in CDN
prefix table instead (:mod:`tickpath.probe.networks`).

Every resolved address is traced (:func:`trace_all`), a few tool processes at a time, because the
addresses of one host name can take different routes (anycast, several edges, several regions);
:func:`favour` then marks the address the TCP/WS figures favour.
"""

from __future__ import annotations

import asyncio
import re
import shutil
from collections.abc import Mapping, Sequence
from typing import Any

import orjson

from tickpath.probe.networks import METHOD as NETWORK_METHOD
from tickpath.probe.networks import classify
from tickpath.procs import run_command

_FLOAT = re.compile(r"^\d+(?:\.\d+)?$")
# Tool processes at once across all addresses: enough to trace a venue's 8 addresses in two rounds,
# few enough that their probe packets do not crowd a small instance's network queue.
PATH_PARALLEL = 4
# The methods whose per-address figures say which address is closest, in order of authority: ws
# pings run on the connection market data uses; tcp connects see every address of both hosts.
FAVOUR_BY = ("ws", "tcp", "rest")


def parse_traceroute(text: str) -> list[dict[str, Any]]:
    """Hops of ``traceroute -n`` output: addresses seen, RTTs in ms, probes lost, annotations."""
    hops: list[dict[str, Any]] = []
    for line in text.splitlines():
        tokens = line.split()
        if not tokens or not tokens[0].isdigit():
            continue  # the header line, or a wrapped continuation we do not need
        hop: dict[str, Any] = {
            "hop": int(tokens[0]),
            "addresses": [],
            "rtts_ms": [],
            "lost": 0,
            "annotations": [],
        }
        i = 1
        while i < len(tokens):
            tok = tokens[i]
            if tok == "*":
                hop["lost"] += 1
            elif tok.startswith("!"):
                hop["annotations"].append(tok)
            elif _FLOAT.match(tok) and i + 1 < len(tokens) and tokens[i + 1] == "ms":
                hop["rtts_ms"].append(float(tok))
                i += 1
            elif tok.startswith("(") and tok.endswith(")"):
                addr = tok.strip("()")  # name (address) form when run without -n
                if addr not in hop["addresses"]:
                    hop["addresses"].append(addr)
            elif tok not in hop["addresses"]:
                hop["addresses"].append(tok)
            i += 1
        hop["sent"] = len(hop["rtts_ms"]) + hop["lost"]
        hops.append(hop)
    return hops


def parse_mtr_json(text: str) -> list[dict[str, Any]]:
    """Hops of ``mtr --json`` output with loss and RTT statistics in ms."""
    try:
        data = orjson.loads(text)
        hubs = data["report"]["hubs"]
    except (orjson.JSONDecodeError, KeyError, TypeError) as exc:
        raise ValueError(f"not mtr --json output: {text[:120]!r}") from exc
    hops: list[dict[str, Any]] = []
    for hub in hubs:
        host = hub.get("host")
        hops.append(
            {
                "hop": int(hub.get("count", len(hops) + 1)),
                "host": None if host in (None, "???") else host,
                "loss_pct": float(hub.get("Loss%", 0.0)),
                "sent": int(hub.get("Snt", 0)),
                "last_ms": hub.get("Last"),
                "avg_ms": hub.get("Avg"),
                "best_ms": hub.get("Best"),
                "worst_ms": hub.get("Wrst"),
                "stdev_ms": hub.get("StDev"),
            }
        )
    return hops


async def run_traceroute(
    host: str,
    *,
    max_hops: int = 30,
    queries: int = 3,
    wait: float = 1.0,
    timeout: float = 60.0,
    tool: str = "traceroute",
) -> dict[str, Any]:
    exe = shutil.which(tool)
    if exe is None:
        return {
            "tool": tool,
            "available": False,
            "note": f"{tool} is not installed (apt-get install traceroute); path hops not measured",
        }
    argv = [exe, "-n", "-q", str(queries), "-w", f"{wait:g}", "-m", str(max_hops), host]
    try:
        done = await run_command(argv, timeout=timeout)
    except TimeoutError:
        return {"tool": tool, "available": True, "error": f"{tool} did not finish within {timeout:g} s"}
    result: dict[str, Any] = {
        "tool": tool,
        "available": True,
        "command": argv[1:],
        "hops": parse_traceroute(done.out),
    }
    if done.code != 0:
        result["error"] = f"{tool} exited {done.code}: {done.err.strip()[:300]}"
    return result


async def run_mtr(
    host: str, *, cycles: int = 10, max_hops: int = 30, timeout: float = 60.0, tool: str = "mtr"
) -> dict[str, Any]:
    exe = shutil.which(tool)
    if exe is None:
        return {
            "tool": tool,
            "available": False,
            "note": f"{tool} is not installed (apt-get install mtr-tiny); per-hop loss not measured",
        }
    argv = [exe, "--json", "-n", "-c", str(cycles), "-i", "0.2", "-G", "1", "-m", str(max_hops), host]
    try:
        done = await run_command(argv, timeout=timeout)
    except TimeoutError:
        return {"tool": tool, "available": True, "error": f"{tool} did not finish within {timeout:g} s"}
    result: dict[str, Any] = {"tool": tool, "available": True, "command": argv[1:]}
    if done.code != 0:
        result["error"] = f"{tool} exited {done.code}: {done.err.strip()[:300]}"
        return result
    try:
        result["hops"] = parse_mtr_json(done.out)
    except ValueError as exc:
        result["error"] = str(exc)
    return result


def annotate_hops(result: dict[str, Any]) -> dict[str, Any] | None:
    """Add ``network`` (from the prefix table, or None) to every hop of a traceroute or mtr
    result; return the first hop inside a CDN (``{"hop", "address", "provider", "asn"}``) or None."""
    first: dict[str, Any] | None = None
    for hop in result.get("hops") or []:
        addresses = hop.get("addresses") or ([hop["host"]] if hop.get("host") else [])
        found = [(a, n) for a in addresses if (n := classify(a)) is not None]
        hop["network"] = found[0][1] if found else None
        edge = next(((a, n) for a, n in found if n["kind"] == "cdn"), None)
        if first is None and edge is not None:
            first = {"hop": hop.get("hop"), "address": edge[0], "provider": edge[1]["provider"], "asn": edge[1]["asn"]}
    return first


async def trace_one(
    ip: str, roles: Sequence[str], sem: asyncio.Semaphore, *, max_hops: int, queries: int, timeout: float
) -> dict[str, Any]:
    """traceroute and mtr to one address (each waits for a slot of ``sem``), annotated by network."""

    async def bounded(coro: Any) -> dict[str, Any]:
        async with sem:
            out: dict[str, Any] = await coro
            return out

    trace, mtr = await asyncio.gather(
        bounded(run_traceroute(ip, max_hops=max_hops, queries=queries, timeout=timeout)),
        bounded(run_mtr(ip, cycles=max(queries, 5), max_hops=max_hops, timeout=timeout)),
    )
    edge_trace, edge_mtr = annotate_hops(trace), annotate_hops(mtr)
    return {
        "roles": list(roles),
        "network": classify(ip),
        "edge_hop": edge_trace or edge_mtr,
        "traceroute": trace,
        "mtr": mtr,
    }


async def trace_all(
    roles_by_ip: Mapping[str, Sequence[str]],
    *,
    max_hops: int = 30,
    queries: int = 3,
    timeout: float = 60.0,
    parallel: int = PATH_PARALLEL,
) -> dict[str, Any]:
    """Trace every address (``{ip: ["ws", "rest"]}``, in order), at most ``parallel`` tools at once.

    The first address's traceroute and mtr also stay at the top level (``destination``,
    ``traceroute``, ``mtr``), where ``tickpath.probe/1`` always had them.
    """
    sem = asyncio.Semaphore(max(1, parallel))
    ips = list(roles_by_ip)
    traced = await asyncio.gather(
        *(trace_one(ip, roles_by_ip[ip], sem, max_hops=max_hops, queries=queries, timeout=timeout) for ip in ips)
    )
    per_ip = dict(zip(ips, traced, strict=True))
    first = per_ip[ips[0]]
    return {
        "destination": ips[0],
        "traceroute": first["traceroute"],
        "mtr": first["mtr"],
        "parallel": max(1, parallel),
        "network_method": NETWORK_METHOD,
        "addresses": per_ip,
    }


def _p50_by_ip(body: Mapping[str, Any]) -> dict[str, float]:
    """The best per-address p50 (µs) of one method; ``ip:port`` targets are folded to their address."""
    out: dict[str, float] = {}
    for target, entry in (body.get("per_ip") or {}).items():
        summary = entry.get("summary") if isinstance(entry, Mapping) else None
        if not isinstance(summary, Mapping) or not summary.get("count"):
            continue  # no sample answered: no figure to favour it by
        p50 = summary.get("p50")
        if not isinstance(p50, (int, float)):
            continue
        ip = _address(target)
        out[ip] = min(out.get(ip, float(p50)), float(p50))
    return out


def _address(target: str) -> str:
    """The address of a probe target: ``1.2.3.4:443`` and ``[::1]:443`` (tcp, tls) or a bare address."""
    if target.startswith("[") and "]" in target:
        return target[1 : target.index("]")]
    if target.count(":") == 1:
        return target.split(":")[0]
    return target


def favour(path: dict[str, Any], methods: Mapping[str, Any]) -> dict[str, Any]:
    """Mark the address the measured figures favour: for each of ws, tcp, rest the traced address
    with the lowest per-address p50, and overall the first of them that measured any traced address.

    Adds ``figures_us`` and ``favoured`` to each ``addresses`` entry and a ``favoured`` summary. A
    single ws/tcp figure per address says nothing about the path beyond it; with one address there
    is nothing to choose, and ``favoured.ip`` is that address when it was measured.
    """
    per_ip: dict[str, Any] = path.get("addresses") or {}
    choice: dict[str, Any] = {}
    for method in FAVOUR_BY:
        body = methods.get(method)
        p50 = {ip: v for ip, v in _p50_by_ip(body).items() if ip in per_ip} if isinstance(body, Mapping) else {}
        for ip, v in p50.items():
            per_ip[ip].setdefault("figures_us", {})[f"{method}.p50"] = v
        if p50:
            best = min(p50, key=lambda ip: (p50[ip], ip))
            choice[method] = {"ip": best, "p50_us": p50[best], "measured": len(p50)}
    overall = next((m for m in FAVOUR_BY if m in choice), None)
    picks = {c["ip"] for c in choice.values()}
    summary: dict[str, Any] = {
        "ip": choice[overall]["ip"] if overall else None,
        "by": f"{overall}.p50" if overall else None,
        **choice,
        "agree": len(picks) <= 1,
    }
    for ip, entry in per_ip.items():
        entry["favoured"] = ip == summary["ip"]
    path["favoured"] = summary
    return path
