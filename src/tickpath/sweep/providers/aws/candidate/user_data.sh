#!/bin/bash
# tickpath sweep probe instance, rendered by Terraform templatefile (shell variables are written without braces).
# Order matters: the self-destruct timer is armed before anything that could fail or hang.
set -uo pipefail
exec >>/var/log/tickpath-sweep.log 2>&1

# Self-destruct at the TTL: shutdown behaviour is "terminate", so this ends the instance for good.
shutdown -h +${ttl_minutes} "tickpath sweep ${sweep_id}: TTL reached"

SWEEP_ID='${sweep_id}'
CANDIDATE='${candidate}'
INDEX='${instance_index}'
BUCKET='${bucket}'
export AWS_DEFAULT_REGION='${region}'
if [ "$INDEX" = "0" ]; then KEY="results/$SWEEP_ID/$CANDIDATE.json"; else KEY="results/$SWEEP_ID/$CANDIDATE/instance-$INDEX.json"; fi

dnf install -y -q python3.11 python3.11-pip chrony traceroute mtr || true
python3.11 -m venv /opt/tickpath
/opt/tickpath/bin/pip install -q '${install}'

# Host tuning first, so the probe measures the machine as it will run in production.
/opt/tickpath/bin/tickpath tune --apply || echo "tickpath tune --apply failed; probing untuned"

started=$(date +%s.%N)
/opt/tickpath/bin/tickpath ${probe_cmdline} >/tmp/probe.json 2>/tmp/probe.err
code=$?
finished=$(date +%s.%N)

/opt/tickpath/bin/python - "$code" "$started" "$finished" "$SWEEP_ID" "$CANDIDATE" >/tmp/result.json <<'PY'
import json, socket, sys
code, started, finished, sweep_id, candidate = sys.argv[1:6]
try:
    probe = json.load(open("/tmp/probe.json"))
except Exception:
    probe = None
err = open("/tmp/probe.err", errors="replace").read()[-2000:]
doc = {"sweep_id": sweep_id, "candidate": candidate, "host": socket.gethostname(),
       "started_unix": float(started), "finished_unix": float(finished), "probe_exit_code": int(code),
       "clock": "wall clock of the probe machine (Unix seconds)"}
if isinstance(probe, dict):
    doc.update(status="ok", probe=probe)
else:
    doc.update(status="failed", error="probe exited %s: %s" % (code, err.strip()))
print(json.dumps(doc))
PY

aws s3 cp /tmp/result.json "s3://$BUCKET/$KEY" --only-show-errors

# Done: power off (terminates the instance) unless told to stay up for the winners' use.
if [ "${power_off_after}" = "true" ]; then shutdown -h now "tickpath sweep: result uploaded"; fi
