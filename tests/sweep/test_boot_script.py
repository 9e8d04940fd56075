"""The AWS boot script, rendered by Terraform and run for real in a throw-away network namespace.

Each test renders ``candidate/user_data.sh`` with ``terraform console`` (the real templatefile) and
runs it with bash under ``unshare -n -m`` (tests/sweep/boot_namespace.py): loopback only, a moto S3
server on it as the sweep's bucket, tmpfs over /opt, /var/log and /var/lib. The script downloads
the REAL wheel built once per session from this repository's HEAD (``git archive``, so other work in
progress in the tree cannot break the build) with the sweep's own :func:`build_wheel`, checks its
SHA-256, creates a fresh venv and installs it with the constraints the sweep computes, runs
``tickpath probe`` (TCP to the moto server) and uploads its result.

What stands in for the instance, and why:

* ``dnf`` and ``shutdown`` are stubs on PATH that record their arguments: installing distribution
  packages needs the network, and a real shutdown would stop this machine.
* The dependencies: on an instance pip fetches the pinned versions from PyPI. The namespace has
  no network and ``PIP_NO_INDEX=1``, so the ``python3.11`` on PATH is a wrapper whose ``-m venv``
  also drops a ``.pth`` into the new venv naming a directory of this test venv's packages *minus
  tickpath* (a pre-warmed image, in effect). pip still resolves the wheel's requirements against
  the constraints file and fails if any pinned version is missing; the wheel itself is installed
  from the downloaded file into the fresh venv, and the result records which tickpath ran. The
  wrapper also removes the setuptools a 3.11 venv bundles, older than the pinned one hdrhistogram
  needs (on an instance pip upgrades it from PyPI to the pin).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path
from typing import Any

import pytest

from tickpath.sweep.provision import module_dir
from tickpath.sweep.ranking import extract_figures
from tickpath.sweep.wheel import build_wheel, constraints, sha256_file

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

REPO = Path(__file__).resolve().parents[2]
CANDIDATE = module_dir("aws", "candidate")
SWEEP_ID = "s-boot"
BUCKET = "tickpath-s-boot"
REGION = "ap-northeast-1"
PORT = 5000  # inside a fresh network namespace every port is free
BASE_PYTHON = Path(sys.base_prefix) / "bin" / f"python{sys.version_info.major}.{sys.version_info.minor}"

_missing = [name for name in ("unshare", "ip", "terraform", "aws", "git", "mount") if shutil.which(name) is None]
pytestmark.append(
    pytest.mark.skipif(
        bool(_missing) or os.geteuid() != 0 or not BASE_PYTHON.exists(),
        reason=f"needs root, {BASE_PYTHON} and {', '.join(_missing) or 'unshare/ip/terraform/aws/git/mount'}",
    )
)


@pytest.fixture(scope="session")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tickpath wheel of HEAD, built once per session by the sweep's own build function."""
    src = tmp_path_factory.mktemp("src")
    archive = subprocess.run(["git", "-C", str(REPO), "archive", "HEAD"], capture_output=True, check=False)
    if archive.returncode != 0:
        pytest.skip(f"not a git checkout: {archive.stderr.decode(errors='replace').strip()}")
    subprocess.run(["tar", "-x", "-C", str(src)], input=archive.stdout, check=True)
    return build_wheel(src, tmp_path_factory.mktemp("wheel"))


@pytest.fixture(scope="session")
def deps_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """This venv's installed packages minus tickpath (symlinks): where the boot's pip finds its pins."""
    d = tmp_path_factory.mktemp("deps")
    for entry in Path(sysconfig.get_paths()["purelib"]).iterdir():
        name = entry.name.lower()
        if name.startswith(("tickpath", "__editable__", "_tickpath")) or name.endswith(".pth"):
            continue
        (d / entry.name).symlink_to(entry)
    return d


def _stubs(bin_dir: Path, deps: Path, calls: Path) -> None:
    bin_dir.mkdir()
    for name in ("dnf", "shutdown"):
        (bin_dir / name).write_text(f'#!/bin/sh\necho "{name} $*" >> {calls}\n')
    (bin_dir / "python3.11").write_text(
        "#!/bin/sh\n"
        f'{BASE_PYTHON} "$@" || exit $?\n'
        'if [ "$1" = "-m" ] && [ "$2" = "venv" ]; then\n'
        f'  site=$("$3/bin/python" -c "import sysconfig; print(sysconfig.get_paths()[\'purelib\'])")\n'
        f'  echo {deps} > "$site/deps.pth"\n'
        '  "$3/bin/python" -m pip uninstall -y -q setuptools\n'
        "fi\n"
    )
    for name in ("dnf", "shutdown", "python3.11"):
        (bin_dir / name).chmod(0o755)
    (bin_dir / "python3").symlink_to(BASE_PYTHON)
    (bin_dir / "aws").symlink_to(Path(shutil.which("aws") or "aws").resolve())


def _render(tmp: Path, variables: dict[str, Any]) -> Path:
    """The boot script as Terraform's templatefile renders it."""
    shutil.copy(CANDIDATE / "user_data.sh", tmp / "user_data.sh")
    fields = ", ".join(f"{k}={json.dumps(v)}" for k, v in variables.items())
    tf_home = tmp / "tf"
    tf_home.mkdir()
    (tf_home / "rc").write_text("")
    proc = subprocess.run(
        ["terraform", "console"],
        input=f'templatefile("user_data.sh", {{{fields}}})\n',
        capture_output=True,
        text=True,
        cwd=tmp,
        env={**os.environ, "TF_CLI_CONFIG_FILE": str(tf_home / "rc"), "TF_DATA_DIR": str(tf_home)},
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    script = tmp / "rendered.sh"
    script.write_text(proc.stdout.strip().removeprefix("<<EOT").removesuffix("EOT").strip() + "\n")
    return script


def _boot(tmp: Path, wheel: Path, deps: Path, *, replace_wheel_with: str = "") -> tuple[dict[str, Any], list[str]]:
    pins = tmp / "constraints.txt"
    pins.write_bytes(constraints())
    variables = {
        "sweep_id": SWEEP_ID,
        "candidate": "apne1-az4.c6in.xlarge",
        "instance_index": 0,
        "bucket": BUCKET,
        "region": REGION,
        "ttl_minutes": 45,
        "probe_cmdline": f"probe --method tcp --rest-url http://127.0.0.1:{PORT} -n 20 --rate 200 --warmup 2 "
        "--no-imds --quiet --json",
        "wheel_key": f"artifacts/{SWEEP_ID}/{wheel.name}",
        "wheel_sha256": sha256_file(wheel),
        "constraints_key": f"artifacts/{SWEEP_ID}/constraints.txt",
        "constraints_sha256": hashlib.sha256(pins.read_bytes()).hexdigest(),
        "python": "python3.11",
        "s3_endpoint": f"http://127.0.0.1:{PORT}",
        "tune": False,  # tune --apply writes host-wide sysctls: not on a shared test machine
        "power_off_after": False,
    }
    script = _render(tmp, variables)
    calls = tmp / "calls.log"
    _stubs(tmp / "bin", deps, calls)
    home = tmp / "home"
    home.mkdir()
    creds = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_EC2_METADATA_DISABLED": "true"}
    spec = {
        "port": PORT,
        "region": REGION,
        "bucket": BUCKET,
        "sweep_id": SWEEP_ID,
        "wheel": str(wheel),
        "wheel_sha256": variables["wheel_sha256"],
        "constraints": str(pins),
        "constraints_sha256": variables["constraints_sha256"],
        "replace_wheel_with": replace_wheel_with,
        "script": str(script),
        "timeout_s": 180,
        "env": {"PATH": f"{tmp / 'bin'}:/usr/bin:/bin", "HOME": str(home), "PIP_NO_INDEX": "1", **creds},
    }
    (tmp / "spec.json").write_text(json.dumps(spec))
    proc = subprocess.run(
        ["unshare", "-n", "-m", "--", sys.executable, str(Path(__file__).with_name("boot_namespace.py")), "spec.json"],
        cwd=tmp,
        capture_output=True,
        text=True,
        timeout=220,
        env={**os.environ, **creds, "PYTHONPATH": str(REPO / "src")},
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return out, calls.read_text().splitlines() if calls.exists() else []


def test_boot_installs_the_uploaded_wheel_in_a_fresh_venv_and_reports(
    tmp_path: Path, wheel: Path, deps_dir: Path
) -> None:
    out, calls = _boot(tmp_path, wheel, deps_dir)
    key = f"results/{SWEEP_ID}/apne1-az4.c6in.xlarge.json"
    assert out["exit_code"] == 0, out["log"]
    doc = out["results"][key]
    assert doc["status"] == "ok", doc
    # The tickpath that ran is the wheel's, installed into the fresh venv, not this checkout.
    assert doc["tickpath"]["path"].startswith("/opt/tickpath/lib/"), doc["tickpath"]
    assert doc["tickpath"]["version"] == wheel.name.split("-")[1]
    assert extract_figures(doc["probe"])["tcp.p50"] > 0
    assert calls[0].startswith("shutdown -h +45 ")  # the TTL is armed before anything else
    assert any(c.startswith("dnf install -y -q python3.11 python3.11-pip") for c in calls)
    assert not any(c.startswith("shutdown -h now") for c in calls)  # a possible winner stays up
    assert ": OK" in out["log"]  # sha256sum --check of the wheel and the constraints


def test_a_wheel_that_is_not_the_one_rendered_fails_the_boot_and_is_reported(
    tmp_path: Path, wheel: Path, deps_dir: Path
) -> None:
    out, calls = _boot(tmp_path, wheel, deps_dir, replace_wheel_with="not the wheel the sweep built")
    assert out["exit_code"] != 0
    doc = out["results"][f"results/{SWEEP_ID}/apne1-az4.c6in.xlarge.json"]
    assert doc["status"] == "failed" and doc["stage"] == "boot", doc
    assert "sha256sum --check --strict" in doc["error"]
    assert "FAILED" in doc["log_tail"] and "did NOT match" in doc["log_tail"]
    assert "testing" not in json.dumps(doc)  # no credential in what is uploaded
    assert calls[-1].startswith("shutdown -h now"), calls
    assert "Successfully installed" not in out["log"]  # nothing was installed from that file
