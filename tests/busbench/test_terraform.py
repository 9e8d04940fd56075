"""Static checks of the busbench Terraform modules (providers cannot be downloaded offline):
formatting, security groups that open only the cluster's ports between the three machines,
placement group, IMDSv2, tags. `terraform fmt` and `validate` of every module: tests/terraform."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import hcl2

import tickpath.busbench

TF = Path(tickpath.busbench.__file__).resolve().parent / "terraform"
TERRAFORM = shutil.which("terraform") or shutil.which("/usr/local/bin/terraform")


def _strip(v: Any) -> Any:
    if isinstance(v, str):
        return v[1:-1] if len(v) >= 2 and v[0] == v[-1] == '"' else v
    if isinstance(v, list):
        return [_strip(x) for x in v]
    if isinstance(v, dict):
        return {_strip(k): _strip(x) for k, x in v.items() if not k.startswith("__")}
    return v


def _module(name: str) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for f in sorted((TF / name).glob("*.tf")):
        for key, blocks in _strip(hcl2.load(f.open())).items():
            merged.setdefault(key, []).extend(blocks)
    return merged


def _resources(mod: dict[str, Any], rtype: str) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for block in mod.get("resource", []):
        out.update(block.get(rtype, {}))
    return out


def test_aws_inbound_rules_open_only_cluster_ports_between_the_three() -> None:
    """Ingress: NATS client port client->servers, route port server<->server, SSH from the operator only."""
    mod = _module("aws")
    assert not _resources(mod, "aws_security_group_rule")  # every rule is a typed ingress/egress rule
    for sg in _resources(mod, "aws_security_group").values():
        assert "ingress" not in sg  # no inline rules that could hide a wide-open port
    ingress = _resources(mod, "aws_vpc_security_group_ingress_rule")
    assert set(ingress) == {"nats_client_port", "nats_routes", "ssh_servers", "ssh_client"}
    for rule in ingress.values():
        assert rule.get("cidr_ipv4", "") != "0.0.0.0/0" and "cidr_ipv6" not in rule
    c, r = ingress["nats_client_port"], ingress["nats_routes"]
    assert (c["from_port"], c["to_port"]) == ("${var.client_port}",) * 2
    assert c["security_group_id"] == "${aws_security_group.servers.id}"
    assert c["referenced_security_group_id"] == "${aws_security_group.client.id}"
    assert (r["from_port"], r["to_port"]) == ("${var.route_port}",) * 2
    assert r["referenced_security_group_id"] == r["security_group_id"] == "${aws_security_group.servers.id}"
    for name in ("ssh_servers", "ssh_client"):
        assert ingress[name]["cidr_ipv4"] == "${var.operator_cidr}" and ingress[name]["from_port"] == 22


def test_aws_operator_cidr_refuses_the_whole_internet() -> None:
    """The operator_cidr variable has a validation that rejects 0.0.0.0/0 and has no default."""
    variables = {k: v for b in _module("aws")["variable"] for k, v in b.items()}
    op = variables["operator_cidr"]
    assert "default" not in op
    assert "0.0.0.0/" in op["validation"][0]["condition"]


def test_aws_instances_placement_imdsv2_tags_and_types() -> None:
    """Three roles with their own instance types, one cluster placement group, IMDSv2, tags."""
    mod = _module("aws")
    (pg,) = _resources(mod, "aws_placement_group").values()
    assert pg["strategy"] == "cluster"
    inst = _resources(mod, "aws_instance")["node"]
    assert inst["placement_group"] == "${aws_placement_group.triangle.id}"
    assert inst["metadata_options"][0]["http_tokens"] == "required"
    assert inst["root_block_device"][0]["encrypted"] is True
    local = {k: v for b in mod["locals"] for k, v in b.items()}
    assert set(local["roles"]) == {"server_a", "server_b", "client"}
    assert local["roles"]["client"] == "${var.instance_type_client}"
    assert {"Project", "Component", "RunId"} <= set(local["tags"])
    provider = mod["provider"][0]["aws"]
    assert provider["default_tags"][0]["tags"] == "${local.tags}"
    assert inst["user_data"] == '${file("${path.module}/../cloud-init.sh")}' or "cloud-init.sh" in inst["user_data"]


def test_no_key_material_or_state_in_the_module_tree() -> None:
    """TLS material is generated per run, never shipped: no PEM, key or state files in the package."""
    for p in TF.rglob("*"):
        assert p.suffix not in {".pem", ".key", ".crt", ".tfstate", ".tfvars"}, p
        if p.is_file():
            assert "PRIVATE KEY" not in p.read_text(errors="replace")


def test_baremetal_firewall_admits_only_the_peers() -> None:
    """Bare metal: nftables rules drop the client port except from the client, routes except from the peer."""
    text = (TF / "baremetal" / "main.tf").read_text()
    assert "tcp dport ${var.client_port} ip saddr != ${var.hosts.client.private} drop" in text
    assert "tcp dport ${var.route_port} ip saddr != ${r.peer} drop" in text
    assert "when = destroy" in " ".join(text.split())  # the firewall table is removed again
