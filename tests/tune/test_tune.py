"""tickpath tune against a fake /proc and /sys root: show, apply, revert, unsupported knobs."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import pytest

from tickpath.cli.main import main as cli_main
from tickpath.errors import ConfigError
from tickpath.tune import EXCLUDED, TuneConfig, apply, inspect, parse_ethtool_coalesce, revert

ETHTOOL_C = """Coalesce parameters for ens5:
Adaptive RX: on  TX: off
stats-block-usecs: n/a
rx-usecs: 20
rx-frames: n/a
tx-usecs: 64
"""


class FakeSystem:
    """Scripted ethtool/systemctl: remembers coalescing values and the irqbalance service."""

    def __init__(self, root: Path, *, ethtool: bool = True) -> None:
        self.root = root
        self.ethtool = ethtool
        self.coalesce = {"adaptive-rx": "on", "rx-usecs": "20"}
        self.calls: list[list[str]] = []

    def __call__(self, argv: Sequence[str]) -> tuple[int, str]:
        self.calls.append(list(argv))
        if argv[0] == "ethtool":
            if not self.ethtool:
                return 127, "ethtool not installed"
            if argv[1] == "-c":
                return 0, (
                    ETHTOOL_C.replace("on  TX", f"{self.coalesce['adaptive-rx']}  TX").replace(
                        "rx-usecs: 20", f"rx-usecs: {self.coalesce['rx-usecs']}"
                    )
                )
            self.coalesce[argv[3]] = argv[4]
            return 0, ""
        if argv[:2] == ["systemctl", "stop"]:
            (self.root / "proc/812/comm").unlink()
            return 0, ""
        if argv[:2] == ["systemctl", "start"]:
            (self.root / "proc/812/comm").write_text("irqbalance\n")
            return 0, ""
        return 1, "unexpected"


def _write(root: Path, rel: str, text: str) -> None:
    p = root / rel
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(text + "\n")


@pytest.fixture
def metal(tmp_path: Path) -> Path:
    """A fake root like a metal instance: cpufreq, C-states, THP, a NIC, irqbalance running."""
    root = tmp_path / "root"
    _write(root, "proc/sys/net/core/busy_poll", "0")
    _write(root, "proc/sys/net/core/busy_read", "0")
    for cpu in (0, 1):
        base = f"sys/devices/system/cpu/cpu{cpu}"
        _write(root, f"{base}/cpufreq/scaling_governor", "powersave")
        _write(root, f"{base}/cpufreq/scaling_available_governors", "performance powersave")
        for state in range(4):
            _write(root, f"{base}/cpuidle/state{state}/disable", "0")
    _write(root, "sys/kernel/mm/transparent_hugepage/enabled", "[always] madvise never")
    _write(root, "sys/kernel/mm/transparent_hugepage/defrag", "always defer [madvise] never")
    (root / "sys/class/net/ens5/device").mkdir(parents=True)
    (root / "sys/class/net/lo").mkdir(parents=True)
    _write(root, "proc/812/comm", "irqbalance")
    return root


def test_show_lists_changes_without_touching_anything(metal: Path, tmp_path: Path) -> None:
    """inspect reports current vs target per setting and changes no file."""
    before = (metal / "proc/sys/net/core/busy_poll").read_text()
    report = inspect(TuneConfig(root=str(metal), state_file=str(tmp_path / "s.json")), run=FakeSystem(metal))
    by = {k.name: k for k in report.knobs}
    assert [(s.current, s.target) for s in by["net.core.busy_poll"].settings] == [("0", "50")]
    assert len(by["cpu.governor"].settings) == 2 and len(by["cpu.cstates"].settings) == 4  # states 2,3 x 2 cpus
    assert by["thp.enabled"].settings[0].current == "always"
    assert {s.where for s in by["nic.coalesce"].settings} == {"ethtool:ens5:adaptive-rx", "ethtool:ens5:rx-usecs"}
    assert by["irqbalance"].settings[0].current == "running"
    assert (metal / "proc/sys/net/core/busy_poll").read_text() == before


def test_apply_then_revert_restores_every_previous_value(metal: Path, tmp_path: Path) -> None:
    """apply saves previous values and sets targets; revert puts every value back."""
    fake = FakeSystem(metal)
    cfg = TuneConfig(root=str(metal), state_file=str(tmp_path / "state/tune.json"), require_root=False)
    report = apply(cfg, run=fake)
    assert report.failed == [] and len(report.changed) == 2 + 2 + 2 + 4 + 2 + 1
    assert (metal / "proc/sys/net/core/busy_poll").read_text().strip() == "50"
    assert (metal / "sys/devices/system/cpu/cpu1/cpufreq/scaling_governor").read_text().strip() == "performance"
    assert (metal / "sys/devices/system/cpu/cpu0/cpuidle/state2/disable").read_text().strip() == "1"
    assert (metal / "sys/devices/system/cpu/cpu0/cpuidle/state1/disable").read_text().strip() == "0"
    assert (metal / "sys/kernel/mm/transparent_hugepage/enabled").read_text().strip() == "never"
    assert fake.coalesce == {"adaptive-rx": "off", "rx-usecs": "0"}
    assert not (metal / "proc/812/comm").exists()
    saved = json.loads((tmp_path / "state/tune.json").read_text())
    assert {"knob": "thp.defrag", "where": "sys/kernel/mm/transparent_hugepage/defrag", "value": "madvise"} in saved[
        "previous"
    ]
    after = inspect(cfg, run=fake)
    assert all(not s.changes for k in after.knobs for s in k.settings)

    back = revert(cfg, run=fake)
    assert back.failed == []
    assert (metal / "proc/sys/net/core/busy_poll").read_text().strip() == "0"
    assert (metal / "sys/devices/system/cpu/cpu0/cpufreq/scaling_governor").read_text().strip() == "powersave"
    assert (metal / "sys/kernel/mm/transparent_hugepage/enabled").read_text().strip() == "always"
    assert fake.coalesce == {"adaptive-rx": "on", "rx-usecs": "20"}
    assert (metal / "proc/812/comm").read_text().strip() == "irqbalance"
    assert not (tmp_path / "state/tune.json").exists()
    with pytest.raises(ConfigError, match="nothing to revert"):
        revert(cfg, run=fake)


def test_second_apply_refuses_to_overwrite_saved_values(metal: Path, tmp_path: Path) -> None:
    """A second --apply before --revert would lose the originals, so it is refused."""
    cfg = TuneConfig(root=str(metal), state_file=str(tmp_path / "s.json"), require_root=False)
    apply(cfg, run=FakeSystem(metal))
    _write(metal, "proc/sys/net/core/busy_poll", "0")
    with pytest.raises(ConfigError, match="revert first"):
        apply(cfg, run=FakeSystem(metal))


def test_virtualised_instance_reports_unsupported_instead_of_failing(tmp_path: Path) -> None:
    """Without cpufreq, cpuidle, THP files or ethtool, knobs say why they are unsupported."""
    root = tmp_path / "vm"
    _write(root, "proc/sys/net/core/busy_poll", "0")
    (root / "sys/class/net/eth0/device").mkdir(parents=True)
    fake = FakeSystem(root, ethtool=False)
    cfg = TuneConfig(root=str(root), state_file=str(tmp_path / "s.json"), require_root=False)
    report = apply(cfg, run=fake)
    by = {k.name: k for k in report.knobs}
    assert "cpufreq" in (by["cpu.governor"].unsupported or "")
    assert "cpuidle" in (by["cpu.cstates"].unsupported or "")
    assert "ethtool not installed" in (by["nic.coalesce"].unsupported or "")
    assert by["net.core.busy_read"].unsupported is not None
    assert report.failed == [] and [c["knob"] for c in report.changed] == ["net.core.busy_poll"]


def test_apply_needs_root_on_the_real_system(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without euid 0, --apply is a ConfigError telling the user to use sudo."""
    monkeypatch.setattr("os.geteuid", lambda: 1000)
    with pytest.raises(ConfigError, match="needs root"):
        apply(TuneConfig(root=str(tmp_path), state_file=str(tmp_path / "s.json")))


def test_excluded_knobs_name_the_reason() -> None:
    """tcp_low_latency and SACK are deliberately left out, each with why."""
    names = dict(EXCLUDED)
    assert "no-op" in names["net.ipv4.tcp_low_latency"] and "hurts" in names["net.ipv4.tcp_sack=0"]


def test_ethtool_coalesce_parsing() -> None:
    """ethtool -c output yields adaptive-rx/tx and numeric parameters."""
    v = parse_ethtool_coalesce(ETHTOOL_C)
    assert v["adaptive-rx"] == "on" and v["adaptive-tx"] == "off" and v["rx-usecs"] == "20"


def test_cli_show_json_on_fake_root(metal: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`tickpath tune --root X --json` prints the report with excluded knobs and exits 0."""
    code = cli_main(["tune", "--root", str(metal), "--json"])
    out = json.loads(capsys.readouterr().out)
    assert code == 0 and out["action"] == "show"
    assert any(k["name"] == "thp.enabled" for k in out["knobs"]) and out["excluded"]


def test_cli_revert_without_state_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """--revert with no saved state exits 2 with one line, no traceback."""
    monkeypatch.setattr("os.geteuid", lambda: 0)
    code = cli_main(["tune", "--revert", "--root", str(tmp_path), "--state-file", str(tmp_path / "none.json")])
    err = capsys.readouterr().err
    assert code == 2 and "nothing to revert" in err and "Traceback" not in err
