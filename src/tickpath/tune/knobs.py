"""The Linux settings that lower network latency on EC2, each readable and settable under a root.

Every knob reads its current values from files under ``root`` (``/`` in production, a fake tree in
tests) or through an injectable command runner (``ethtool``, ``systemctl``), and says plainly when
this instance does not expose it (most virtualised EC2 instances have no cpufreq governor and no
C-state control; those exist on metal and some larger sizes).

Left out on purpose, because they are no-ops or make latency worse: ``net.ipv4.tcp_low_latency``
(ignored since Linux 4.14), turning off ``tcp_sack`` or ``tcp_timestamps`` (slower loss recovery and
worse RTT estimates), and global ``TCP_NODELAY`` (a per-socket option; tickpath sets it).
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

# run(argv) -> (exit code, stdout); injectable so tests never touch the real system.
CommandRunner = Callable[[Sequence[str]], tuple[int, str]]

EXCLUDED: tuple[tuple[str, str], ...] = (
    ("net.ipv4.tcp_low_latency", "no-op: ignored by the kernel since Linux 4.14"),
    ("net.ipv4.tcp_sack=0", "hurts: loss recovery needs more round trips without SACK"),
    ("net.ipv4.tcp_timestamps=0", "hurts: worse RTT estimation and PAWS protection, no latency gain"),
    ("global TCP_NODELAY", "not a sysctl: a per-socket option, which tickpath sets on its sockets"),
)


def system_runner(argv: Sequence[str]) -> tuple[int, str]:
    """Run a system command with a short timeout; a missing program is exit code 127."""
    if shutil.which(argv[0]) is None:
        return 127, f"{argv[0]} not installed"
    try:
        proc = subprocess.run(list(argv), capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return 126, str(exc)
    return proc.returncode, proc.stdout + proc.stderr


@dataclass
class Setting:
    """One value of a knob at one place (a file, or an interface's parameter)."""

    where: str  # file path relative to root, or "ethtool:<iface>:<param>", or "service:<name>"
    current: str
    target: str

    @property
    def changes(self) -> bool:
        return self.current != self.target


@dataclass
class KnobState:
    """What a knob looks like on this machine."""

    name: str
    why: str
    settings: list[Setting] = field(default_factory=list)
    unsupported: str | None = None  # why this instance does not expose it


class Knob:
    name = ""
    why = ""

    def inspect(self, root: Path, run: CommandRunner) -> KnobState:
        raise NotImplementedError

    def write(self, root: Path, run: CommandRunner, where: str, value: str) -> None:
        """Set ``where`` to ``value`` (files by default)."""
        (root / where).write_text(value + "\n")


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


def _bracketed(text: str) -> str:
    """The selected value of a sysfs choice file: ``always [madvise] never`` -> ``madvise``."""
    m = re.search(r"\[([^\]]+)\]", text)
    return m.group(1) if m else text.strip()


class SysctlKnob(Knob):
    def __init__(self, name: str, rel: str, target: str, why: str) -> None:
        self.name, self.rel, self.target, self.why = name, rel, target, why

    def inspect(self, root: Path, run: CommandRunner) -> KnobState:
        st = KnobState(self.name, self.why)
        value = _read(root / self.rel)
        if value is None:
            st.unsupported = f"/{self.rel} not present on this kernel"
        else:
            st.settings.append(Setting(self.rel, value, self.target))
        return st


class ChoiceKnob(SysctlKnob):
    """A sysfs file that shows its choices with the selected one in brackets."""

    def inspect(self, root: Path, run: CommandRunner) -> KnobState:
        st = KnobState(self.name, self.why)
        value = _read(root / self.rel)
        if value is None:
            st.unsupported = f"/{self.rel} not present"
        elif self.target not in value.replace("[", " ").replace("]", " ").split():
            st.unsupported = f"{self.target!r} is not offered by /{self.rel} ({value})"
        else:
            st.settings.append(Setting(self.rel, _bracketed(value), self.target))
        return st


class GovernorKnob(Knob):
    name = "cpu.governor"
    why = "the performance governor keeps cores at full clock, so wake-ups do not pay for ramp-up"

    def inspect(self, root: Path, run: CommandRunner) -> KnobState:
        st = KnobState(self.name, self.why)
        cpus = sorted((root / "sys/devices/system/cpu").glob("cpu[0-9]*/cpufreq/scaling_governor"))
        if not cpus:
            st.unsupported = "no cpufreq governor exposed (usual on virtualised EC2; the hypervisor owns it)"
            return st
        for gov in cpus:
            avail = _read(gov.parent / "scaling_available_governors") or ""
            if "performance" not in avail.split():
                st.unsupported = f"performance governor not offered ({avail or 'no list'})"
                st.settings.clear()
                return st
            st.settings.append(Setting(str(gov.relative_to(root)), _read(gov) or "", "performance"))
        return st


class CStateKnob(Knob):
    name = "cpu.cstates"
    why = "deep C-states take tens to hundreds of µs to leave; keep only POLL and C1"

    def inspect(self, root: Path, run: CommandRunner) -> KnobState:
        st = KnobState(self.name, self.why)
        files = sorted((root / "sys/devices/system/cpu").glob("cpu[0-9]*/cpuidle/state[0-9]*/disable"))
        deep = [f for f in files if int(f.parent.name.removeprefix("state")) >= 2]
        if not files:
            st.unsupported = "no cpuidle states exposed (set intel_idle.max_cstate=1 on the kernel line on metal)"
        elif not deep:
            st.unsupported = "only shallow C-states exist here; nothing to disable"
        for f in deep:
            st.settings.append(Setting(str(f.relative_to(root)), _read(f) or "0", "1"))
        return st


class IrqBalanceKnob(Knob):
    name = "irqbalance"
    why = "irqbalance moves NIC interrupts between cores at run time, which costs cache warmth and adds jitter"

    def inspect(self, root: Path, run: CommandRunner) -> KnobState:
        st = KnobState(self.name, self.why)
        running = any(_read(comm) == "irqbalance" for comm in (root / "proc").glob("[0-9]*/comm"))
        st.settings.append(Setting("service:irqbalance", "running" if running else "stopped", "stopped"))
        return st

    def write(self, root: Path, run: CommandRunner, where: str, value: str) -> None:
        action = "stop" if value == "stopped" else "start"
        code, out = run(["systemctl", action, "irqbalance"])
        if code != 0:
            raise OSError(f"systemctl {action} irqbalance failed: {out.strip()[:200]}")


class CoalesceKnob(Knob):
    name = "nic.coalesce"
    why = "interrupt moderation holds received packets for tens of µs to batch them; turn it off for latency"
    PARAMS = (("adaptive-rx", "off"), ("rx-usecs", "0"))

    def inspect(self, root: Path, run: CommandRunner) -> KnobState:
        st = KnobState(self.name, self.why)
        ifaces = sorted(p.name for p in (root / "sys/class/net").glob("*") if (p / "device").exists())
        if not ifaces:
            st.unsupported = "no physical network interface found under /sys/class/net"
            return st
        for iface in ifaces:
            code, out = run(["ethtool", "-c", iface])
            if code == 127:
                st.unsupported = "ethtool not installed (apt-get install ethtool)"
                return st
            if code != 0:
                st.unsupported = f"{iface}: interrupt coalescing not adjustable ({out.strip()[:120]})"
                continue
            values = parse_ethtool_coalesce(out)
            for param, target in self.PARAMS:
                if param in values and values[param] not in ("n/a", ""):
                    st.settings.append(Setting(f"ethtool:{iface}:{param}", values[param], target))
        if not st.settings and st.unsupported is None:
            st.unsupported = "the driver exposes neither adaptive-rx nor rx-usecs"
        return st

    def write(self, root: Path, run: CommandRunner, where: str, value: str) -> None:
        _, iface, param = where.split(":", 2)
        code, out = run(["ethtool", "-C", iface, param, value])
        if code != 0:
            raise OSError(f"ethtool -C {iface} {param} {value} failed: {out.strip()[:200]}")


def parse_ethtool_coalesce(text: str) -> dict[str, str]:
    """``ethtool -c`` output to {param: value}; ``Adaptive RX: off  TX: off`` gives adaptive-rx/-tx."""
    out: dict[str, str] = {}
    for line in text.splitlines():
        m = re.match(r"\s*Adaptive RX:\s*(\S+)\s+TX:\s*(\S+)", line)
        if m:
            out["adaptive-rx"], out["adaptive-tx"] = m.group(1), m.group(2)
            continue
        m = re.match(r"\s*([a-z][a-z0-9-]*):\s*(\S+)\s*$", line)
        if m:
            out[m.group(1)] = m.group(2)
    return out


def default_knobs() -> list[Knob]:
    return [
        SysctlKnob(
            "net.core.busy_poll",
            "proc/sys/net/core/busy_poll",
            "50",
            "poll/epoll spin on the NIC queue for up to 50 µs instead of sleeping for an interrupt",
        ),
        SysctlKnob(
            "net.core.busy_read",
            "proc/sys/net/core/busy_read",
            "50",
            "blocking socket reads spin on the NIC queue for up to 50 µs",
        ),
        CoalesceKnob(),
        GovernorKnob(),
        CStateKnob(),
        ChoiceKnob(
            "thp.enabled",
            "sys/kernel/mm/transparent_hugepage/enabled",
            "never",
            "transparent huge page compaction stalls the process for ms at unpredictable times",
        ),
        ChoiceKnob(
            "thp.defrag",
            "sys/kernel/mm/transparent_hugepage/defrag",
            "never",
            "no synchronous defragmentation in the page-fault path",
        ),
        IrqBalanceKnob(),
    ]
