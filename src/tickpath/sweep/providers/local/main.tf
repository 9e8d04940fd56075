# tickpath sweep, provider "local": one candidate = one probe agent process on this machine.
#
# Built only from Terraform's built-in terraform_data resource, so `terraform init` needs no provider
# download and the whole sweep runs offline. The create-time provisioner starts the agent detached
# (its own session, like an instance that keeps running after the API call returns); the destroy-time
# provisioner stops the agent's whole process group, the local equivalent of terminating the instance.
# One agent per instance of the candidate (sweep.instances_per_candidate), like the aws module's
# instance count; keeping a candidate's best instance destroys the others by address (agent[N]).

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

variable "agent_specs" {
  type        = list(string)
  description = "One JSON spec per instance for its agent: store_dir, probe_args or probe_argv, ttl_s."
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
  count = length(var.agent_specs)
  input = {
    sweep_id  = var.sweep_id
    candidate = var.candidate
    instance  = count.index
    pidfile   = "${var.run_dir}/agent-${count.index}.pid"
    tags      = var.tags
  }

  provisioner "local-exec" {
    interpreter = ["/bin/sh", "-c"]
    command     = <<-EOT
      set -e
      mkdir -p "$RUN_DIR"
      setsid "$PYTHON" -m tickpath.sweep.agent --sweep-id "$SWEEP_ID" --candidate "$CANDIDATE" \
        --instance "$INSTANCE" >"$RUN_DIR/agent-$INSTANCE.log" 2>&1 </dev/null &
      echo $! >"$RUN_DIR/agent-$INSTANCE.pid"
    EOT
    environment = {
      PYTHON               = var.python
      SWEEP_ID             = var.sweep_id
      CANDIDATE            = var.candidate
      INSTANCE             = count.index
      RUN_DIR              = var.run_dir
      TICKPATH_SWEEP_AGENT = var.agent_specs[count.index]
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

output "agent_pidfiles" {
  description = "Pid file of each candidate's probe agent (destroy stops its process group)."
  value       = terraform_data.agent[*].output.pidfile
}
