"""The state of this machine that a latency figure depends on.

- the local clock: chrony's tracking (offset, source, stratum) when chronyc is installed, the
  clocksource, and whether a PTP hardware clock is present (on EC2 the ENA PHC, ``/dev/ptp*``);
- where it runs: on EC2, the instance id, type, AZ name and AZ ID from IMDSv2, asked with short
  timeouts so a machine off EC2 loses a fraction of a second and reports nothing.

Only public facts go into results: no IMDS token, no credentials, no user data.
"""

from __future__ import annotations

import asyncio
import os
import platform
import shutil
import socket
from pathlib import Path
from typing import Any

from tickpath.errors import ToolMissingError
from tickpath.procs import run_command

_CHRONY_FIELDS = (
    ("reference_id", str),
    ("source", str),
    ("stratum", int),
    ("ref_time_unix", float),
    ("system_offset_s", float),
    ("last_offset_s", float),
    ("rms_offset_s", float),
    ("frequency_ppm", float),
    ("residual_freq_ppm", float),
    ("skew_ppm", float),
    ("root_delay_s", float),
    ("root_dispersion_s", float),
    ("update_interval_s", float),
    ("leap_status", str),
)


def parse_chrony_tracking(csv_line: str) -> dict[str, Any]:
    """Parse ``chronyc -c tracking`` (one CSV line) into named, typed fields."""
    parts = csv_line.strip().split(",")
    if len(parts) < len(_CHRONY_FIELDS):
        raise ValueError(f"unexpected chronyc tracking output: {csv_line[:120]!r}")
    out: dict[str, Any] = {}
    for (name, kind), raw in zip(_CHRONY_FIELDS, parts, strict=False):
        try:
            out[name] = kind(raw)
        except ValueError:
            out[name] = raw
    return out


async def chrony_tracking(timeout: float = 2.0) -> dict[str, Any]:
    exe = shutil.which("chronyc")
    if exe is None:
        return {"available": False, "note": "chronyc not installed: local clock discipline unknown"}
    try:
        done = await run_command([exe, "-c", "tracking"], timeout=timeout)
    except (OSError, TimeoutError, ToolMissingError) as exc:
        return {"available": False, "note": f"chronyc tracking failed: {exc or 'timed out'}"}
    if done.code:
        return {"available": False, "note": f"chronyc tracking failed: {done.err.strip()}"}
    try:
        return {"available": True, **parse_chrony_tracking(done.out)}
    except ValueError as exc:
        return {"available": False, "note": str(exc)}


def ptp_clocks(root: str | Path = "/") -> list[dict[str, str]]:
    """PTP hardware clocks under ``root`` (``/sys/class/ptp/ptpN/clock_name``)."""
    base = Path(root) / "sys/class/ptp"
    out = []
    if base.is_dir():
        for entry in sorted(base.iterdir()):
            name_file = entry / "clock_name"
            name = name_file.read_text().strip() if name_file.exists() else ""
            out.append({"device": f"/dev/{entry.name}", "clock_name": name})
    return out


def clocksource(root: str | Path = "/") -> str | None:
    f = Path(root) / "sys/devices/system/clocksource/clocksource0/current_clocksource"
    try:
        return f.read_text().strip()
    except OSError:
        return None


async def ec2_metadata(base_url: str = "http://169.254.169.254", timeout: float = 0.3) -> dict[str, str] | None:
    """Instance id, type, AZ and AZ ID via IMDSv2, or None when not on EC2 (or IMDS is off)."""
    import aiohttp  # only here: it is the probe's heaviest import, and sweep agents start twelve at once

    t = aiohttp.ClientTimeout(total=timeout * 4, connect=timeout, sock_read=timeout)
    try:
        async with aiohttp.ClientSession(timeout=t) as session:
            async with session.put(
                f"{base_url}/latest/api/token", headers={"X-aws-ec2-metadata-token-ttl-seconds": "60"}
            ) as resp:
                if resp.status != 200:
                    return None
                token = await resp.text()
            headers = {"X-aws-ec2-metadata-token": token}
            out: dict[str, str] = {}
            for key, path in (
                ("instance_id", "instance-id"),
                ("instance_type", "instance-type"),
                ("availability_zone", "placement/availability-zone"),
                ("availability_zone_id", "placement/availability-zone-id"),
                ("region", "placement/region"),
            ):
                async with session.get(f"{base_url}/latest/meta-data/{path}", headers=headers) as resp:
                    if resp.status == 200:
                        out[key] = (await resp.text()).strip()
            return out or None
    except (aiohttp.ClientError, TimeoutError, OSError):
        return None


async def host_state(
    *,
    root: str = "/",
    imds: bool = True,
    imds_url: str = "http://169.254.169.254",
    imds_timeout: float = 0.3,
    chrony: bool = True,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(host metadata, local clock state) for the result file."""
    ec2_task = asyncio.ensure_future(ec2_metadata(imds_url, imds_timeout)) if imds else None
    chrony_state = await chrony_tracking() if chrony else {"available": False, "note": "not asked"}
    ptp = ptp_clocks(root)
    host: dict[str, Any] = {
        "hostname": socket.gethostname(),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "ec2": await ec2_task if ec2_task is not None else None,
    }
    clock: dict[str, Any] = {
        "chrony": chrony_state,
        "clocksource": clocksource(root),
        "ptp_hardware_clock": bool(ptp),
        "ptp_clocks": ptp,
    }
    return host, clock
