"""Static checks of the shipped AWS Terraform modules: IMDSv2, no world-open inbound, tags, scoped role
(`terraform fmt` and `validate` of every module: tests/terraform)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import hcl2
import pytest

from tickpath.sweep.provision import module_dir

AWS = module_dir("aws", "shared").parent
TAGGABLE = {
    "aws_vpc",
    "aws_internet_gateway",
    "aws_route_table",
    "aws_s3_bucket",
    "aws_iam_role",
    "aws_iam_instance_profile",
    "aws_subnet",
    "aws_security_group",
    "aws_placement_group",
    "aws_instance",
}

needs_terraform = pytest.mark.skipif(shutil.which("terraform") is None, reason="terraform CLI not installed")


def _unquote(node: Any) -> Any:
    """python-hcl2 keeps HCL quotes on keys and string literals; strip them for readable checks."""
    if isinstance(node, dict):
        return {_unquote(k): _unquote(v) for k, v in node.items() if k not in ("__is_block__", "__comments__")}
    if isinstance(node, list):
        return [_unquote(v) for v in node]
    if isinstance(node, str) and len(node) >= 2 and node[0] == node[-1] == '"':
        return node[1:-1]
    return node


def _load(part: str) -> dict[str, Any]:
    with (AWS / part / "main.tf").open() as fh:
        return _unquote(hcl2.load(fh))  # type: ignore[no-any-return]


def _resources(doc: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    out = {}
    for block in doc.get("resource", []):
        for rtype, named in block.items():
            for name, body in named.items():
                out[(rtype, name)] = body
    return out


SHARED = _resources(_load("shared"))
CANDIDATE = _resources(_load("candidate"))
ALL = {**SHARED, **CANDIDATE}


def _tf_env(tmp_path: Path) -> dict[str, str]:
    rc = tmp_path / "terraformrc"
    rc.write_text("")
    return {**os.environ, "TF_CLI_CONFIG_FILE": str(rc), "TF_IN_AUTOMATION": "1", "CHECKPOINT_DISABLE": "1"}


def test_instances_require_imdsv2_and_terminate_on_shutdown() -> None:
    """The probe instance demands IMDSv2 tokens and terminates (not stops) when it powers off."""
    inst = CANDIDATE[("aws_instance", "probe")]
    meta = inst["metadata_options"][0]
    assert meta["http_tokens"] == "required"
    assert meta["http_put_response_hop_limit"] == 1
    assert inst["instance_initiated_shutdown_behavior"] == "terminate"
    assert inst["root_block_device"][0]["encrypted"] is True


def test_no_inbound_rule_is_open_to_the_world() -> None:
    """No security group has an ingress block or rule, least of all one from 0.0.0.0/0 or ::/0."""
    for (rtype, name), body in ALL.items():
        if rtype == "aws_security_group":
            assert "ingress" not in body, f"{rtype}.{name} has ingress"
        assert rtype not in ("aws_security_group_rule", "aws_vpc_security_group_ingress_rule"), (rtype, name)
    for body in ALL.values():
        text = json.dumps(body)
        if '"ingress"' in text:
            assert "0.0.0.0/0" not in text and "::/0" not in text


def test_every_taggable_resource_is_tagged_with_the_sweep_tags() -> None:
    """Each taggable resource carries var.tags (which hold tickpath:sweep-id), and providers default to them."""
    seen = set()
    for (rtype, name), body in ALL.items():
        if rtype in TAGGABLE:
            seen.add(rtype)
            assert "var.tags" in str(body.get("tags", "")), f"{rtype}.{name} is not tagged"
    assert seen == TAGGABLE
    assert "var.tags" in str(CANDIDATE[("aws_instance", "probe")]["volume_tags"])
    for part in ("shared", "candidate"):
        provider = _load(part)["provider"][0]["aws"]
        assert "var.tags" in str(provider["default_tags"][0]["tags"])


def test_results_bucket_is_private_and_expires() -> None:
    """Public access is blocked four ways, ownership enforced, no bucket ACL/policy, objects expire."""
    pab = SHARED[("aws_s3_bucket_public_access_block", "results")]
    for key in ("block_public_acls", "block_public_policy", "ignore_public_acls", "restrict_public_buckets"):
        assert pab[key] is True, key
    own = SHARED[("aws_s3_bucket_ownership_controls", "results")]
    assert own["rule"][0]["object_ownership"] == "BucketOwnerEnforced"
    assert not any(
        t in ("aws_s3_bucket_acl", "aws_s3_bucket_policy", "aws_s3_bucket_website_configuration") for t, _ in SHARED
    )
    life = SHARED[("aws_s3_bucket_lifecycle_configuration", "results")]["rule"][0]
    assert life["status"] == "Enabled" and "var.results_expiry_days" in str(life["expiration"][0]["days"])


def test_instance_role_may_only_put_objects_under_its_sweep_prefix() -> None:
    """The role's only data permissions: s3:PutObject on results/<sweep-id>/* and s3:GetObject on
    artifacts/<sweep-id>/* (the wheel) of the results bucket."""
    inline = [b for (t, _), b in SHARED.items() if t == "aws_iam_role_policy"]
    assert len(inline) == 1
    policy = str(inline[0]["policy"])
    actions = re.findall(r"s3:[A-Za-z*]+", policy)
    assert actions == ["s3:PutObject", "s3:GetObject"]
    statements = re.findall(
        r"s3:(PutObject|GetObject).*?Resource[^\]]*?/(results|artifacts)/\$\{var\.sweep_id\}/\*", policy
    )
    assert statements == [("PutObject", "results"), ("GetObject", "artifacts")], policy
    assert '"*"' not in policy and "s3:*" not in policy
    attached = [b for (t, _), b in SHARED.items() if t == "aws_iam_role_policy_attachment"]
    assert [str(a["policy_arn"]).rsplit("/", 1)[-1] for a in attached] == ["AmazonSSMManagedInstanceCore"]
    assume = str(SHARED[("aws_iam_role", "probe")]["assume_role_policy"])
    assert "ec2.amazonaws.com" in assume


def test_subnet_is_chosen_by_zone_id_not_name() -> None:
    """The candidate's subnet comes from aws_availability_zones filtered by zone-id = var.az_id."""
    doc = _load("candidate")
    zones = next(b["aws_availability_zones"]["chosen"] for b in doc["data"] if "aws_availability_zones" in b)
    assert zones["filter"][0]["name"] == "zone-id" and zones["filter"][0]["values"] == ["${var.az_id}"]
    assert "data.aws_availability_zones.chosen.names" in CANDIDATE[("aws_subnet", "probe")]["availability_zone"]


@pytest.mark.integration
@needs_terraform
def test_boot_script_renders_and_arms_the_self_destruct_first(tmp_path: Path) -> None:
    """user_data renders with templatefile, is valid bash, and schedules shutdown before installing anything."""
    shutil.copy(AWS / "candidate" / "user_data.sh", tmp_path / "user_data.sh")
    expr = (
        'templatefile("user_data.sh", {sweep_id="s-1", candidate="apne1-az4.c6in.xlarge", instance_index=0, '
        'bucket="tickpath-s-1", region="ap-northeast-1", ttl_minutes=45, '
        'probe_cmdline="probe --method tcp,ws --json", wheel_key="artifacts/s-1/tickpath-0.1.0-py3-none-any.whl", '
        'wheel_sha256="00", constraints_key="artifacts/s-1/constraints.txt", constraints_sha256="00", '
        'python="python3.11", s3_endpoint="", tune=true, power_off_after=true})'
    )
    proc = subprocess.run(
        ["terraform", "console"],
        input=expr + "\n",
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=_tf_env(tmp_path),
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    script = proc.stdout.strip()
    script = script.removeprefix("<<EOT").removesuffix("EOT").strip()
    (tmp_path / "rendered.sh").write_text(script + "\n")
    assert subprocess.run(["bash", "-n", str(tmp_path / "rendered.sh")], capture_output=True).returncode == 0
    lines = script.splitlines()
    first = lambda pattern: next(i for i, ln in enumerate(lines) if re.search(pattern, ln))  # noqa: E731
    assert first(r"^trap 'boot_failed ") < first(r"^shutdown -h \+45 ") < first(r"^dnf install")
    assert first(r"^dnf install") < first(r"sha256sum --check") < first(r"pip\" install") < first(r'tickpath" tune')
    assert first(r'tickpath" tune --apply') < first(r'tickpath" probe --method tcp,ws --json')
    assert script.startswith("#!/bin/bash") and "set -Eeuo pipefail" in script and "|| true" not in script
    assert first(r"aws s3 cp .*s3://\$BUCKET/\$KEY") < first(r"shutdown -h now")
    assert 'KEY="results/$SWEEP_ID/$CANDIDATE.json"' in script
