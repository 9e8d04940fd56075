"""Every numeric `tickpath probe` option is checked up front: exit 2 and a message naming the option."""

from __future__ import annotations

import pytest

from tickpath.cli.main import main as cli_main
from tickpath.errors import ConfigError
from tickpath.probe import ProbeConfig

# Loopback URLs on port 1 (nothing listens): a value that slipped through would fail later with
# exit 4/5 instead of 2, which is what these tests tell apart.
_LOCAL = ["--rest-url", "http://127.0.0.1:1", "--ws-url", "ws://127.0.0.1:1", "--no-imds", "-q"]


@pytest.mark.parametrize(
    ("argv", "option"),
    [
        (["-m", "tcp", "--port", "99999"], "--port"),
        (["-m", "tcp", "--port", "0"], "--port"),
        (["-m", "tcp", "--port", "-5"], "--port"),
        (["-m", "tcp", "--max-ips", "0"], "--max-ips"),
        (["-m", "tcp", "--max-ips", "-1"], "--max-ips"),
        (["-m", "stream", "--stream-seconds", "0"], "--stream-seconds"),
        (["-m", "stream", "--stream-seconds", "-1"], "--stream-seconds"),
        (["-m", "stream", "--stream-seconds", "nan"], "--stream-seconds"),
        (["-m", "stream", "--stream-seconds", "inf"], "--stream-seconds"),
        (["-m", "tcp", "--samples", "0"], "--samples"),
        (["-m", "tcp", "--samples", "-3"], "--samples"),
        (["-m", "tcp", "--rate", "nan"], "--rate"),
        (["-m", "tcp", "--rate", "inf"], "--rate"),
        (["-m", "tcp", "--rate", "-1"], "--rate"),
        (["-m", "tcp", "--rate", "1e9"], "--rate"),
        (["-m", "tcp", "--duration", "0"], "--duration"),
        (["-m", "tcp", "--duration", "nan"], "--duration"),
        (["-m", "tcp", "--duration", "inf"], "--duration"),
        (["-m", "tcp", "--duration", "1e7"], "--duration"),
        (["-m", "tcp", "--warmup", "-1"], "--warmup"),
        (["-m", "tcp", "--timeout", "0"], "--timeout"),
        (["-m", "tcp", "--timeout", "nan"], "--timeout"),
        (["-m", "tcp", "--timeout", "inf"], "--timeout"),
        (["-m", "rest", "--offset-samples", "0"], "--offset-samples"),
    ],
)
def test_bad_number_exits_2_naming_the_option(argv: list[str], option: str, capsys: pytest.CaptureFixture[str]) -> None:
    """A bad value exits 2 before any probing, with one line naming the option and no traceback."""
    assert cli_main(["probe", *argv, *_LOCAL]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert option in err and "Traceback" not in err and err.count("\n") == 1
    assert "DNS gave none" not in err and "traded on" not in err and "Connect call failed" not in err


def test_valid_port_edges_are_accepted() -> None:
    """Ports 1 and 65535, --max-ips 1, --warmup 0 and a small positive --stream-seconds are valid."""
    cfg = ProbeConfig(tcp_ports=(1, 65535), max_ips=1, warmup=0, stream_duration=0.1, offset_samples=1)
    assert cfg.tcp_ports == (1, 65535) and cfg.stream_seconds == 0.1


def test_duration_makes_samples_irrelevant() -> None:
    """With --duration the sample count comes from the duration, so --samples 0 is not an error."""
    assert ProbeConfig(samples=0, duration=2.0, rate=10.0, methods=("tcp",)).sample_count == 20


@pytest.mark.parametrize("field", ["rate", "timeout", "duration", "stream_duration"])
@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
def test_library_config_rejects_non_finite_times(field: str, value: float) -> None:
    """ProbeConfig built by a library caller rejects NaN and infinities too, not only the CLI."""
    with pytest.raises(ConfigError, match="finite"):
        ProbeConfig(**{field: value})  # type: ignore[arg-type]
