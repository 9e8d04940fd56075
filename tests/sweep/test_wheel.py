"""The wheel an AWS sweep installs: resolving, pinning, the module variables, and a failed boot report
ranked out by the orchestrator (the script itself runs for real in tests/sweep/test_boot_script.py)."""

from __future__ import annotations

import hashlib
import json
import zipfile
from importlib import metadata
from pathlib import Path

import pytest

from tickpath.clock import ManualClock
from tickpath.errors import ConfigError, InfraError
from tickpath.sweep.config import parse_config
from tickpath.sweep.orchestrator import Orchestrator
from tickpath.sweep.plan import candidates
from tickpath.sweep.provision import TerraformProvisioner
from tickpath.sweep.results import summary, write_results
from tickpath.sweep.wheel import constraints, resolve_wheel, source_tree

from .helpers import FakeProvisioner, ScriptedStore, local_config, ok_result, probe_doc

REPO = Path(__file__).resolve().parents[2]
S = 1_000_000_000


def _aws_raw(aws: dict[str, object] | None = None, **sweep: object) -> dict[str, object]:
    base: dict[str, object] = {
        "name": "tokyo",
        "provider": "aws",
        "region": "ap-northeast-1",
        "az_ids": ["apne1-az4"],
        "instance_types": ["c6in.xlarge"],
        "ttl_minutes": 30,
        "max_cost_usd": 5,
    }
    base.update(sweep)
    raw: dict[str, object] = {"sweep": base, "probe": {"methods": ["tcp"], "duration_s": 5}}
    raw["ranking"] = {"metric": "tcp.p50"}
    if aws is not None:
        raw["aws"] = aws
    return raw


def _fake_wheel(tmp_path: Path, name: str = "tickpath-0.1.0-cp312-cp312-linux_aarch64.whl") -> Path:
    path = tmp_path / name
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("tickpath/__init__.py", "__version__ = '0.1.0'\n")
    return path


def test_a_given_wheel_is_checksummed_and_names_its_python_and_keys(tmp_path: Path) -> None:
    wheel = _fake_wheel(tmp_path)
    art = resolve_wheel(wheel)
    assert art.sha256 == hashlib.sha256(wheel.read_bytes()).hexdigest()
    assert art.constraints_sha256 == hashlib.sha256(art.constraints).hexdigest()
    assert art.python == "python3.12"
    assert art.keys("s-1") == (f"artifacts/s-1/{wheel.name}", "artifacts/s-1/constraints.txt")
    variables = art.boot_variables("s-1")
    assert variables["wheel_sha256"] == art.sha256 and variables["python"] == "python3.12"


@pytest.mark.parametrize("name", ["notes.txt", "tickpath-0.1.0.tar.gz", "other-0.1.0-py3-none-any.whl"])
def test_anything_but_a_tickpath_wheel_is_refused(tmp_path: Path, name: str) -> None:
    (tmp_path / name).write_bytes(b"x")
    with pytest.raises(ConfigError, match="not a tickpath wheel"):
        resolve_wheel(tmp_path / name)
    with pytest.raises(ConfigError, match="not a tickpath wheel"):
        resolve_wheel(tmp_path / "missing-tickpath-0.1.0-py3-none-any.whl")


def test_constraints_pin_what_runs_here_with_the_aws_extra_and_nothing_of_other_extras() -> None:
    pins = dict(line.split("==") for line in constraints().decode().splitlines())
    for direct in ("aiohttp", "duckdb", "numpy", "boto3", "botocore"):  # own pins, the aws extra, transitive
        assert pins[direct] == metadata.version(direct)
    assert "pytest" not in pins and "moto" not in pins and "google-cloud-pubsub" not in pins
    assert "pip" not in pins and "tickpath" not in pins
    assert all(v and " " not in v for v in pins.values())


def test_the_running_checkout_is_found_as_the_source_to_build() -> None:
    if not (REPO / "pyproject.toml").exists() or not (REPO / "src" / "tickpath").is_dir():
        pytest.skip("tests not run from a source checkout")
    assert source_tree() == REPO


def test_aws_config_takes_a_wheel_and_refuses_the_old_pip_requirement(tmp_path: Path) -> None:
    cfg = parse_config(_aws_raw({"wheel": "dist/tickpath-0.1.0-py3-none-any.whl"}))
    assert cfg.wheel == Path("dist/tickpath-0.1.0-py3-none-any.whl")
    assert parse_config(_aws_raw()).wheel is None
    with pytest.raises(ConfigError, match="tickpath_install is gone"):
        parse_config(_aws_raw({"tickpath_install": "tickpath[aws]==0.1.0"}))


@pytest.mark.parametrize(("keep", "power_off"), [(1, False), (2, False), (0, True)])
def test_no_instance_powers_off_after_its_upload_while_a_winner_may_be_kept(
    tmp_path: Path, keep: int, power_off: bool
) -> None:
    """A winner is kept running; powering off after the upload would terminate it."""
    cfg = parse_config(_aws_raw(keep=keep, state_dir=str(tmp_path)))
    prov = TerraformProvisioner(cfg, "s-1", terraform="/bin/true")
    prov.artifact = resolve_wheel(_fake_wheel(tmp_path, "tickpath-0.1.0-cp311-cp311-linux_x86_64.whl"))
    variables = prov._variables(candidates(cfg)[0])
    assert variables["power_off_after_upload"] is power_off
    assert variables["wheel_key"] == "artifacts/s-1/tickpath-0.1.0-cp311-cp311-linux_x86_64.whl"
    assert variables["wheel_sha256"] == prov.artifact.sha256 and variables["python"] == "python3.11"
    assert "tickpath_install" not in variables


async def test_a_failed_boot_report_is_a_failed_candidate_with_its_reason(tmp_path: Path) -> None:
    """The document the boot script uploads when the install fails ranks the candidate out, reason shown."""
    cfg = local_config(tmp_path, ["a", "b"], result_timeout_s=100)
    clock = ManualClock()
    store = ScriptedStore(clock)
    prov = FakeProvisioner(clock, store)
    orch = Orchestrator(cfg, "unit-1", prov, clock=clock, candidates=candidates(cfg))
    boot_failed = {
        "sweep_id": "unit-1",
        "candidate": "a",
        "instance": 0,
        "status": "failed",
        "stage": "boot",
        "exit_code": 1,
        "error": 'exit 1 at boot script line 62: echo "$WHEEL_SHA256  $WHEEL" | sha256sum --check --strict',
        "log_tail": "tickpath.whl: FAILED\nsha256sum: WARNING: 1 computed checksum did NOT match",
        "finished_unix": 1.0,
    }
    store.script = {"a": (1 * S, json.dumps(boot_failed).encode()), "b": (5 * S, ok_result(probe_doc(900)))}
    out = await orch.run()
    assert out.ranking == ["b"] and out.winners == ["b"]
    st = orch.states["a"]
    assert st.failed and (st.error or "").startswith("boot failed: exit 1 at boot script line 62")
    assert prov.destroyed_at["a"] < 2 * S
    doc = summary(cfg, out)
    assert doc["failed"] == ["a"] and "1 candidate(s) failed" in doc["why"]
    md = (write_results(cfg, out, tmp_path / "results") / "summary.md").read_text()
    assert "FAILED: boot failed: exit 1 at boot script line 62" in md


def test_a_wheel_that_is_not_a_zip_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "tickpath-0.1.0-py3-none-any.whl"
    bad.write_bytes(b"truncated download")
    with pytest.raises(ConfigError, match="not a tickpath wheel"):
        resolve_wheel(bad)


@pytest.mark.integration
def test_the_provisioner_uploads_the_wheel_and_constraints_to_its_bucket(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What the boot script downloads is byte for byte what was checksummed (moto S3 on loopback)."""
    import boto3
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        for k, v in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}.items():
            monkeypatch.setenv(k, v)
        monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://{host}:{port}")
        monkeypatch.delenv("AWS_PROFILE", raising=False)
        cfg = parse_config(_aws_raw(state_dir=str(tmp_path)))
        s3 = boto3.session.Session().client("s3", region_name=cfg.region)  # no process-wide default session
        s3.create_bucket(Bucket="tickpath-s-1", CreateBucketConfiguration={"LocationConstraint": cfg.region})
        prov = TerraformProvisioner(cfg, "s-1", terraform="/bin/true")
        prov.artifact = resolve_wheel(_fake_wheel(tmp_path))
        prov._shared_outputs = {"results_bucket": "tickpath-s-1"}
        prov._upload_wheel()
        wheel_key, constraints_key = prov.artifact.keys("s-1")
        body = s3.get_object(Bucket="tickpath-s-1", Key=wheel_key)["Body"].read()
        assert hashlib.sha256(body).hexdigest() == prov.artifact.sha256
        pins = s3.get_object(Bucket="tickpath-s-1", Key=constraints_key)["Body"].read()
        assert hashlib.sha256(pins).hexdigest() == prov.artifact.constraints_sha256
        # A bucket that is not there is an InfraError naming it, not a traceback.
        prov._shared_outputs = {"results_bucket": "tickpath-missing"}
        with pytest.raises(InfraError, match="tickpath-missing"):
            prov._upload_wheel()
    finally:
        server.stop()
