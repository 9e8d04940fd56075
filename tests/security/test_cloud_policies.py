"""docs/security.md, cloud resources: what sweep, busbench and gcp setup create is least privilege.

Checked on the shipped modules and the GCP plan, offline: every instance requires IMDSv2 with one
hop; no IAM policy allows a wildcard action or resource; the sweep role's only managed policy is
SSM's; the busbench triangle has no IAM role at all; GCP grants are on one dataset, topic or
subscription, never on the project. (No inbound rule from 0.0.0.0/0: tests/terraform.)
"""

from __future__ import annotations

import json
import re
from typing import Any

from tests.terraform.test_modules import MODULES, _doc, _typed
from tickpath.gcp import GcpConfig, setup_plan


def _all(rtype: str) -> dict[tuple[str, str], Any]:
    return {
        (mod, name): body
        for mod in MODULES
        for doc in (_doc(mod),)
        for (t, name), body in _typed(doc, "resource").items()
        if t == rtype
    }


def test_every_instance_requires_imdsv2_with_one_hop_and_an_encrypted_disk() -> None:
    """aws_instance in any module: http_tokens required, hop limit 1 (no container reaches it), encrypted root."""
    instances = _all("aws_instance")
    assert {m for m, _ in instances} == {"sweep/aws/candidate", "busbench/aws"}
    for key, inst in instances.items():
        meta = inst["metadata_options"][0]
        assert meta["http_tokens"] == "required", key
        assert meta["http_put_response_hop_limit"] == 1, key
        assert inst["root_block_device"][0]["encrypted"] is True, key


def test_no_iam_policy_grants_a_wildcard_action_or_resource() -> None:
    """Inline and standalone policies name their actions and resources (no "*", no "service:*")."""
    policies = {**_all("aws_iam_role_policy"), **_all("aws_iam_policy")}
    assert policies, "the sweep's role has an inline policy"
    for key, body in policies.items():
        text = str(body["policy"])
        assert not re.search(r"[A-Za-z0-9]+:\*", text), f"{key}: wildcard action in {text}"
        assert not re.search(r'=\s*\[?\s*"\*"', text), f"{key}: a bare * action or resource in {text}"
        assert "Allow" in text and "s3:PutObject" in text, key  # the policy was read, not skipped


def test_managed_policies_and_roles_are_only_the_sweeps() -> None:
    """The only attached managed policy is AmazonSSMManagedInstanceCore, on the sweep role; busbench has none."""
    attached = _all("aws_iam_role_policy_attachment")
    assert [str(b["policy_arn"]).rsplit("/", 1)[-1] for b in attached.values()] == ["AmazonSSMManagedInstanceCore"]
    roles = _all("aws_iam_role")
    assert set(roles) == {("sweep/aws/shared", "probe")}
    assume = str(roles[("sweep/aws/shared", "probe")]["assume_role_policy"])
    assert "ec2.amazonaws.com" in assume and "sts:AssumeRole" in assume
    assert "iam_instance_profile" not in json.dumps(_all("aws_instance")[("busbench/aws", "node")])


def test_gcp_grants_are_scoped_to_one_resource_each() -> None:
    """gcp setup grants the Pub/Sub service agent three roles, each on one dataset, topic or subscription."""
    steps = setup_plan(GcpConfig(project="tick-proj", dataset="market"), "123")
    grants = [s for s in steps if s.kind.endswith("_iam")]
    assert grants and {s.kind for s in grants} == {"dataset_iam", "topic_iam", "subscription_iam"}
    roles = {s.kind: s.spec["role"] for s in grants}
    assert roles == {
        "dataset_iam": "roles/bigquery.dataEditor",
        "topic_iam": "roles/pubsub.publisher",
        "subscription_iam": "roles/pubsub.subscriber",
    }
    for s in grants:
        assert s.spec["member"] == "serviceAccount:service-123@gcp-sa-pubsub.iam.gserviceaccount.com"
        assert s.name != "tick-proj" and "." in s.name  # a resource inside the project, never the project
