"""The network path: traceroute and MTR run through the system tools, parsed into JSON per hop.

Both tools are optional: when one is not installed the result says so plainly and the other
methods are unaffected. Numeric output (``-n``) keeps the run fast and offline-safe; hop names
would add a reverse lookup per hop.
"""

from __future__ import annotations

import re
import shutil
from typing import Any

import orjson

from tickpath.procs import run_command

_FLOAT = re.compile(r"^\d+(?:\.\d+)?$")


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
