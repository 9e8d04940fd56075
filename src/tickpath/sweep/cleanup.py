"""Tag-scoped search for anything a sweep left behind, after Terraform destroy has run.

Only resources carrying ``tickpath:sweep-id = <id>`` are touched; a resource without that exact tag
is never deleted, whatever its name. On AWS that means EC2 instances, placement groups, security
groups, subnets, route tables, internet gateways, VPCs, S3 buckets and IAM roles/instance profiles of
the sweep. Locally, the "tag" is the ``--sweep-id`` on a probe agent's command line.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import time
from collections.abc import Callable, Collection
from pathlib import Path
from typing import Any

from tickpath.errors import ConfigError, InfraError
from tickpath.logs import log_event
from tickpath.sweep.plan import TAG_SWEEP_ID

log = logging.getLogger("tickpath.sweep.cleanup")
AGENT_MODULE = "tickpath.sweep.agent"  # not imported from there: `python -m` must load it fresh


# -- local -------------------------------------------------------------------------------------
def local_agents(sweep_id: str, proc_root: Path = Path("/proc"), *, keep: Collection[str] = ()) -> list[int]:
    """Pids of live (non-zombie) probe agents of this sweep, found by their command line.

    Agents of candidates in ``keep`` (the winners) are left out.
    """
    found = []
    for entry in proc_root.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        args = [a.decode("utf-8", "replace") for a in argv if a]
        state = stat.rsplit(")", 1)[-1].split()[0] if ")" in stat else "?"
        if state == "Z" or AGENT_MODULE not in args:
            continue
        flags = {a: args[i + 1] for i, a in enumerate(args[:-1]) if a in ("--sweep-id", "--candidate")}
        if flags.get("--sweep-id") == sweep_id and flags.get("--candidate") not in keep:
            found.append(int(entry.name))
    return sorted(found)


def stop_local_agents(sweep_id: str, *, keep: Collection[str] = (), grace_s: float = 5.0) -> list[int]:
    """Stop every agent of this sweep but the kept ones (each leads its process group, probe included)."""
    pids = local_agents(sweep_id, keep=keep)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while local_agents(sweep_id, keep=keep) and time.monotonic() < deadline:
        time.sleep(0.1)
    for pid in local_agents(sweep_id, keep=keep):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)
    if pids:
        log_event(log, logging.WARNING, "stray_agents_stopped", sweep=sweep_id, pids=pids)
    return pids


# -- aws ---------------------------------------------------------------------------------------
def _has_tag(tags: list[dict[str, str]] | None, sweep_id: str) -> bool:
    return any(t.get("Key") == TAG_SWEEP_ID and t.get("Value") == sweep_id for t in tags or [])


class AwsTagCleaner:
    """Finds and deletes the sweep's tagged AWS resources with boto3 clients (injectable for moto)."""

    def __init__(
        self, sweep_id: str, *, region: str, client_factory: Callable[[str], Any] | None = None, waiter_delay_s: int = 5
    ) -> None:
        if not sweep_id:
            raise ConfigError("a sweep id is required for a tag-scoped cleanup")
        self.sweep_id = sweep_id
        self.region = region
        if client_factory is None:
            import boto3

            def client_factory(service: str) -> Any:
                return boto3.client(service, region_name=region)

        self._client = client_factory
        self.waiter_delay_s = waiter_delay_s
        self.deleted: list[str] = []
        self.warnings: list[str] = []

    def _call(self, what: str, fn: Callable[..., Any], **kw: Any) -> Any:
        from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError
        from botocore.parsers import ResponseParserError

        try:
            return fn(**kw)
        except NoCredentialsError as exc:
            raise ConfigError(f"no AWS credentials for the cleanup ({what}); set AWS_PROFILE or keys") from exc
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code.endswith("NotFound") or code in ("NoSuchEntity", "NoSuchBucket", "NoSuchTagSet"):
                return None  # gone already: that is what we wanted
            raise InfraError(f"{what} failed ({code}): {exc}") from exc
        except (BotoCoreError, ResponseParserError) as exc:
            raise InfraError(f"{what} failed: {str(exc)[:300]}") from exc

    def run(self) -> list[str]:
        """Delete everything tagged with this sweep id, in dependency order; return what was deleted."""
        self._instances()
        try:
            self._ec2_kind(
                "placement group",
                "describe_placement_groups",
                "PlacementGroups",
                "GroupName",
                "delete_placement_group",
                "GroupName",
            )
        except InfraError as exc:
            # Placement groups cost nothing and block nothing else; do not let them stop the rest.
            self.warnings.append(f"placement groups not cleaned: {exc}")
            log_event(log, logging.WARNING, "placement_groups_skipped", sweep=self.sweep_id, error=exc)
        self._ec2_kind(
            "security group",
            "describe_security_groups",
            "SecurityGroups",
            "GroupId",
            "delete_security_group",
            "GroupId",
        )
        self._ec2_kind("subnet", "describe_subnets", "Subnets", "SubnetId", "delete_subnet", "SubnetId")
        self._route_tables()
        self._gateways()
        self._ec2_kind("vpc", "describe_vpcs", "Vpcs", "VpcId", "delete_vpc", "VpcId")
        self._buckets()
        self._iam()
        return self.deleted

    def _tag_filter(self) -> list[dict[str, Any]]:
        return [{"Name": f"tag:{TAG_SWEEP_ID}", "Values": [self.sweep_id]}]

    def _instances(self) -> None:
        ec2 = self._client("ec2")
        resp = self._call("describe instances", ec2.describe_instances, Filters=self._tag_filter()) or {}
        ids = [
            i["InstanceId"]
            for r in resp.get("Reservations", [])
            for i in r.get("Instances", [])
            if i.get("State", {}).get("Name") not in ("terminated", "shutting-down")
            and _has_tag(i.get("Tags"), self.sweep_id)
        ]  # double check: never trust a filter alone
        if ids:
            self._call("terminate instances", ec2.terminate_instances, InstanceIds=ids)
            with contextlib.suppress(Exception):
                ec2.get_waiter("instance_terminated").wait(
                    InstanceIds=ids,
                    WaiterConfig={"Delay": self.waiter_delay_s, "MaxAttempts": max(1, 300 // self.waiter_delay_s)},
                )
            self.deleted += [f"ec2:instance/{i}" for i in ids]

    def _ec2_kind(
        self, label: str, describe: str, key: str, id_key: str, delete: str, arg: str, *, server_filter: bool = True
    ) -> None:
        ec2 = self._client("ec2")
        kw = {"Filters": self._tag_filter()} if server_filter else {}
        resp = self._call(f"describe {label}s", getattr(ec2, describe), **kw) or {}
        for item in resp.get(key, []):
            if _has_tag(item.get("Tags"), self.sweep_id):
                self._call(f"delete {label} {item[id_key]}", getattr(ec2, delete), **{arg: item[id_key]})
                self.deleted.append(f"ec2:{label.replace(' ', '-')}/{item[id_key]}")

    def _route_tables(self) -> None:
        ec2 = self._client("ec2")
        resp = self._call("describe route tables", ec2.describe_route_tables, Filters=self._tag_filter()) or {}
        for rt in resp.get("RouteTables", []):
            if not _has_tag(rt.get("Tags"), self.sweep_id):
                continue
            for assoc in rt.get("Associations", []):
                if not assoc.get("Main"):
                    self._call(
                        "disassociate route table",
                        ec2.disassociate_route_table,
                        AssociationId=assoc["RouteTableAssociationId"],
                    )
            self._call("delete route table", ec2.delete_route_table, RouteTableId=rt["RouteTableId"])
            self.deleted.append(f"ec2:route-table/{rt['RouteTableId']}")

    def _gateways(self) -> None:
        ec2 = self._client("ec2")
        resp = (
            self._call("describe internet gateways", ec2.describe_internet_gateways, Filters=self._tag_filter()) or {}
        )
        for gw in resp.get("InternetGateways", []):
            if not _has_tag(gw.get("Tags"), self.sweep_id):
                continue
            for att in gw.get("Attachments", []):
                self._call(
                    "detach internet gateway",
                    ec2.detach_internet_gateway,
                    InternetGatewayId=gw["InternetGatewayId"],
                    VpcId=att["VpcId"],
                )
            self._call(
                "delete internet gateway", ec2.delete_internet_gateway, InternetGatewayId=gw["InternetGatewayId"]
            )
            self.deleted.append(f"ec2:internet-gateway/{gw['InternetGatewayId']}")

    def _buckets(self) -> None:
        s3 = self._client("s3")
        for b in (self._call("list buckets", s3.list_buckets) or {}).get("Buckets", []):
            name = b["Name"]
            tagging = self._call(f"get tags of bucket {name}", s3.get_bucket_tagging, Bucket=name) or {}
            if not _has_tag(tagging.get("TagSet"), self.sweep_id):
                continue
            paginator = s3.get_paginator("list_object_versions")
            for page in paginator.paginate(Bucket=name):
                objs = [
                    {"Key": o["Key"], "VersionId": o["VersionId"]}
                    for o in page.get("Versions", []) + page.get("DeleteMarkers", [])
                ]
                if objs:
                    self._call("empty bucket", s3.delete_objects, Bucket=name, Delete={"Objects": objs})
            self._call(f"delete bucket {name}", s3.delete_bucket, Bucket=name)
            self.deleted.append(f"s3:bucket/{name}")

    def _iam(self) -> None:
        iam = self._client("iam")
        for role in (self._call("list roles", iam.list_roles, PathPrefix="/tickpath/") or {}).get("Roles", []):
            name = role["RoleName"]
            tags = (self._call("list role tags", iam.list_role_tags, RoleName=name) or {}).get("Tags", [])
            if not _has_tag(tags, self.sweep_id):
                continue
            profiles = self._call("list instance profiles", iam.list_instance_profiles_for_role, RoleName=name) or {}
            for prof in profiles.get("InstanceProfiles", []):
                self._call(
                    "remove role from profile",
                    iam.remove_role_from_instance_profile,
                    InstanceProfileName=prof["InstanceProfileName"],
                    RoleName=name,
                )
                self._call(
                    "delete instance profile",
                    iam.delete_instance_profile,
                    InstanceProfileName=prof["InstanceProfileName"],
                )
                self.deleted.append(f"iam:instance-profile/{prof['InstanceProfileName']}")
            for pol in (self._call("list role policies", iam.list_role_policies, RoleName=name) or {}).get(
                "PolicyNames", []
            ):
                self._call("delete role policy", iam.delete_role_policy, RoleName=name, PolicyName=pol)
            attached = self._call("list attached policies", iam.list_attached_role_policies, RoleName=name) or {}
            for pol in attached.get("AttachedPolicies", []):
                self._call("detach role policy", iam.detach_role_policy, RoleName=name, PolicyArn=pol["PolicyArn"])
            self._call("delete role", iam.delete_role, RoleName=name)
            self.deleted.append(f"iam:role/{name}")
