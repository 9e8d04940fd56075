#!/bin/sh
# Boot script of every busbench machine: the NATS server and Python for the client. No secrets
# here: TLS material, credentials and configs arrive over SSH from tickpath after boot.
set -eu
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends nats-server python3 python3-venv rsync
systemctl disable --now nats-server 2>/dev/null || true
touch /var/lib/busbench-ready
