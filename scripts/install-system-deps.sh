#!/usr/bin/env bash
# Installs the system programs the test suite drives for real: nats-server (Debian), traceroute
# and mtr (probe path method), chromium (the report is tested in a real headless browser). Terraform is checked, never downloaded from outside the registries.
# Runs apt only when root; otherwise it reports what is missing and the tests that need it skip.
set -uo pipefail
need=()
command -v nats-server >/dev/null 2>&1 || need+=(nats-server)
command -v traceroute >/dev/null 2>&1 || need+=(traceroute)
command -v mtr >/dev/null 2>&1 || need+=(mtr-tiny)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing with apt: ${need[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null 2>&1 || true
    apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null 2>&1 \
      || echo "warning: apt-get install ${need[*]} failed; tests needing them will skip" >&2
  else
    echo "note: not root, not installing ${need[*]}; tests needing them will skip" >&2
  fi
fi
if ! command -v terraform >/dev/null 2>&1; then
  echo "note: terraform not found on PATH; sweep integration tests will skip" >&2
elif [ ! -d "${TICKPATH_TF_PLUGIN_DIR:-/opt/tf-plugins}/registry.terraform.io" ]; then
  echo "note: no local Terraform provider mirror (TICKPATH_TF_PLUGIN_DIR); 'terraform validate' of the AWS modules will skip" >&2
fi
exit 0
