"""Run a rendered AWS boot script for real, inside a throw-away network and mount namespace.

Started by tests/sweep/test_boot_script.py as ``unshare -n -m -- python boot_namespace.py SPEC.json``:
the namespace has a loopback interface and nothing else (no route to any index or to AWS), and
tmpfs over /opt, /var/log and /var/lib, so the script writes its venv, log and work files where it
would on an instance without touching this machine. Here it starts a moto S3 server on loopback,
creates the sweep's bucket, uploads the wheel and constraints with the sweep's own upload code
(optionally overwriting the wheel object with other bytes afterwards), runs the script with bash and
prints, as JSON: the script's exit code, every object under results/, and the shutdown calls.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import boto3
from moto.server import ThreadedMotoServer

from tickpath.sweep.wheel import WheelArtifact, upload


def _isolate() -> None:
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    for target in ("/opt", "/var/log", "/var/lib"):
        subprocess.run(["mount", "-t", "tmpfs", "tickpath-test", target], check=True)


def main(spec_path: str) -> int:
    spec = json.loads(Path(spec_path).read_text())
    _isolate()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=spec["port"], verbose=False)
    server.start()
    try:
        s3 = boto3.client("s3", region_name=spec["region"], endpoint_url=f"http://127.0.0.1:{spec['port']}")
        s3.create_bucket(Bucket=spec["bucket"], CreateBucketConfiguration={"LocationConstraint": spec["region"]})
        art = WheelArtifact(
            Path(spec["wheel"]),
            spec["wheel_sha256"],
            Path(spec["constraints"]).read_bytes(),
            spec["constraints_sha256"],
        )
        upload(art, spec["bucket"], spec["sweep_id"], s3)
        if spec.get("replace_wheel_with"):  # what a corrupted or swapped object looks like
            s3.put_object(Bucket=spec["bucket"], Key=art.keys(spec["sweep_id"])[0], Body=spec["replace_wheel_with"])
        proc = subprocess.run(
            ["bash", spec["script"]], env=spec["env"], capture_output=True, text=True, timeout=spec["timeout_s"]
        )
        listed = s3.list_objects_v2(Bucket=spec["bucket"], Prefix="results/").get("Contents", [])
        results = {
            o["Key"]: json.loads(s3.get_object(Bucket=spec["bucket"], Key=o["Key"])["Body"].read()) for o in listed
        }
        log = Path("/var/log/tickpath-sweep.log")
        print(
            json.dumps(
                {
                    "exit_code": proc.returncode,
                    "stderr": proc.stderr[-2000:],
                    "results": results,
                    "log": log.read_text(errors="replace")[-6000:] if log.exists() else "",
                }
            )
        )
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    os.environ.setdefault("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")
    sys.exit(main(sys.argv[1]))
