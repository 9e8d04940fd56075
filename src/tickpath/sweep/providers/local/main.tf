# tickpath sweep, provider "local": one candidate = one probe agent process on this machine.
#
# Built only from Terraform's built-in terraform_data resource, so `terraform init` needs no provider
# download and the whole sweep runs offline. The create-time provisioner starts the agent detached
# (its own session, like an instance that keeps running after the API call returns); the destroy-time
# provisioner stops the agent's whole process group, the local equivalent of terminating the instance.

terraform {
  required_version = ">= 1.4.0"
}

variable "sweep_id" {
  type        = string
  description = "Sweep identifier; also the tag that cleanup searches for."
}

variable "candidate" {
  type        = string
  description = "Candidate name (zone and instance type)."
}

variable "python" {
  type        = string
  description = "Python interpreter that has tickpath installed."
}

variable "agent_spec" {
  type        = string
  description = "JSON spec for the agent: store_dir, probe_argv, ttl_s."
}

variable "run_dir" {
  type        = string
  description = "Directory for the agent's pid file and log."
}

variable "tags" {
  type        = map(string)
  description = "Tags recorded on every resource (tickpath:sweep-id and friends)."
}

resource "terraform_data" "agent" {
  input = {
    sweep_id  = var.sweep_id
    candidate = var.candidate
    pidfile   = "${var.run_dir}/agent.pid"
    tags      = var.tags
  }

  provisioner "local-exec" {
    interpreter = ["/bin/sh", "-c"]
    command     = <<-EOT
      set -e
      mkdir -p "$RUN_DIR"
      setsid "$PYTHON" -m tickpath.sweep.agent --sweep-id "$SWEEP_ID" --candidate "$CANDIDATE" \
        >"$RUN_DIR/agent.log" 2>&1 </dev/null &
      echo $! >"$RUN_DIR/agent.pid"
    EOT
    environment = {
      PYTHON               = var.python
      SWEEP_ID             = var.sweep_id
      CANDIDATE            = var.candidate
      RUN_DIR              = var.run_dir
      TICKPATH_SWEEP_AGENT = var.agent_spec
    }
  }

  provisioner "local-exec" {
    when        = destroy
    interpreter = ["/bin/sh", "-c"]
    command     = <<-EOT
      [ -f "$PIDFILE" ] || exit 0
      pid=$(cat "$PIDFILE")
      # Only a process of this sweep (pids get reused); zombies count as gone.
      alive() {
        [ -r "/proc/$pid/cmdline" ] && tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q -- "--sweep-id $SWEEP_ID " &&
          ! grep -q '^[0-9]* ([^)]*) Z' "/proc/$pid/stat" 2>/dev/null
      }
      if alive; then
        # The agent leads its own process group: stop it and its probe together.
        kill -TERM "-$pid" 2>/dev/null || true
        i=0
        while alive && [ $i -lt 50 ]; do sleep 0.1; i=$((i+1)); done
        kill -KILL "-$pid" 2>/dev/null || true
      fi
      rm -f "$PIDFILE"
    EOT
    environment = {
      PIDFILE  = self.input.pidfile
      SWEEP_ID = self.input.sweep_id
    }
  }
}

output "agent_pidfile" {
  value = terraform_data.agent.output.pidfile
}
