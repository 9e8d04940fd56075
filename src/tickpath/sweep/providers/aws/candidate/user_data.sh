#!/bin/bash
# tickpath sweep probe instance, rendered by Terraform templatefile (shell variables are written without braces).
# Every command must succeed: the first one that fails ends the boot, its exit code, line and the tail of
# this log are uploaded as this instance's result (status "failed", stage "boot"), and the instance powers
# off (which terminates it). The self-destruct timer is armed before anything that could fail or hang.
# No credentials here: the aws CLI takes the instance role's from IMDSv2; nothing below echoes them.
set -Eeuo pipefail
umask 022
LOG=/var/log/tickpath-sweep.log
exec >>"$LOG" 2>&1

SWEEP_ID='${sweep_id}'
CANDIDATE='${candidate}'
INDEX='${instance_index}'
BUCKET='${bucket}'
WHEEL_KEY='${wheel_key}'
WHEEL_SHA256='${wheel_sha256}'
CONSTRAINTS_KEY='${constraints_key}'
CONSTRAINTS_SHA256='${constraints_sha256}'
PY='${python}'
export AWS_DEFAULT_REGION='${region}'
ENDPOINT='${s3_endpoint}'
if [ -n "$ENDPOINT" ]; then export AWS_ENDPOINT_URL="$ENDPOINT"; fi
if [ "$INDEX" = "0" ]; then KEY="results/$SWEEP_ID/$CANDIDATE.json"; else KEY="results/$SWEEP_ID/$CANDIDATE/instance-$INDEX.json"; fi
WORK=/var/lib/tickpath-sweep
VENV=/opt/tickpath

# Report the failure as this instance's result, then power off; the TTL timer is the backstop if even
# the report cannot be uploaded.
boot_failed() {
  local code=$1 line=$2 cmd=$3
  trap - ERR
  set +e
  echo "tickpath sweep: boot failed (exit $code) at line $line: $cmd"
  python3 - "$code" "$line" "$cmd" "$SWEEP_ID" "$CANDIDATE" "$INDEX" "$LOG" >/tmp/tickpath-failed.json <<'PY'
import json, socket, sys, time
code, line, cmd, sweep_id, candidate, index, log = sys.argv[1:8]
tail = open(log, "rb").read()[-3000:].decode("utf-8", "replace")
print(json.dumps({"sweep_id": sweep_id, "candidate": candidate, "instance": int(index),
                  "host": socket.gethostname(), "finished_unix": time.time(), "status": "failed",
                  "stage": "boot", "exit_code": int(code), "log_tail": tail,
                  "error": "exit %s at boot script line %s: %s" % (code, line, cmd),
                  "clock": "wall clock of the probe machine (Unix seconds)"}))
PY
  aws s3 cp /tmp/tickpath-failed.json "s3://$BUCKET/$KEY" --only-show-errors
  shutdown -h now "tickpath sweep: boot failed"
  exit "$code"
}
trap 'boot_failed $? $LINENO "$BASH_COMMAND"' ERR

# Self-destruct at the TTL: shutdown behaviour is "terminate", so this ends the instance for good.
shutdown -h +${ttl_minutes} "tickpath sweep $SWEEP_ID: TTL reached"
echo "tickpath sweep $SWEEP_ID: boot of $CANDIDATE instance $INDEX"

dnf install -y -q "$PY" "$PY-pip" chrony traceroute mtr

# Exactly the wheel the sweep uploaded, checked against the digest rendered into this script.
mkdir -p "$WORK"
WHEEL="$WORK/$(basename "$WHEEL_KEY")"
aws s3 cp "s3://$BUCKET/$WHEEL_KEY" "$WHEEL" --only-show-errors
aws s3 cp "s3://$BUCKET/$CONSTRAINTS_KEY" "$WORK/constraints.txt" --only-show-errors
echo "$WHEEL_SHA256  $WHEEL" | sha256sum --check --strict
echo "$CONSTRAINTS_SHA256  $WORK/constraints.txt" | sha256sum --check --strict
"$PY" -m venv "$VENV"
"$VENV/bin/pip" install --quiet --disable-pip-version-check --constraint "$WORK/constraints.txt" "$WHEEL[aws]"
"$VENV/bin/tickpath" --version

# Host tuning first, so the probe measures the machine as it will run in production. A tuning that
# this kernel refuses is logged and the probe runs untuned (the result says what was measured).
if [ '${tune}' = "true" ]; then "$VENV/bin/tickpath" tune --apply || echo "tickpath tune --apply failed; probing untuned"; fi

started=$(date +%s.%N)
code=0
"$VENV/bin/tickpath" ${probe_cmdline} >"$WORK/probe.json" 2>"$WORK/probe.err" || code=$?
finished=$(date +%s.%N)

"$VENV/bin/python" - "$code" "$started" "$finished" "$SWEEP_ID" "$CANDIDATE" "$INDEX" "$WORK" >"$WORK/result.json" <<'PY'
import json, socket, sys
import tickpath
code, started, finished, sweep_id, candidate, index, work = sys.argv[1:8]
try:
    probe = json.load(open(work + "/probe.json"))
except Exception:
    probe = None
err = open(work + "/probe.err", errors="replace").read()[-2000:]
doc = {"sweep_id": sweep_id, "candidate": candidate, "instance": int(index), "host": socket.gethostname(),
       "started_unix": float(started), "finished_unix": float(finished), "probe_exit_code": int(code),
       "tickpath": {"version": tickpath.__version__, "path": tickpath.__file__},
       "clock": "wall clock of the probe machine (Unix seconds)"}
if isinstance(probe, dict):
    doc.update(status="ok", probe=probe, probe_stderr=err.strip() or None)
else:
    doc.update(status="failed", stage="probe", error="probe exited %s: %s" % (code, err.strip()))
print(json.dumps(doc))
PY

aws s3 cp "$WORK/result.json" "s3://$BUCKET/$KEY" --only-show-errors

# Done: power off (terminates the instance) only when no candidate can be kept as a winner; a
# loser is destroyed by the sweep, a winner stays up for its user.
if [ "${power_off_after}" = "true" ]; then shutdown -h now "tickpath sweep: result uploaded"; fi
