"""The S3 result store and the tag-scoped AWS cleanup, against a moto server on loopback."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
from botocore.config import Config
from moto.server import ThreadedMotoServer

from tickpath.errors import ConfigError, InfraError
from tickpath.sweep.cleanup import AwsTagCleaner
from tickpath.sweep.config import SweepConfig, parse_config
from tickpath.sweep.plan import TAG_SWEEP_ID
from tickpath.sweep.runner import aws_preflight
from tickpath.sweep.store import S3Store

pytestmark = pytest.mark.integration
REGION = "ap-northeast-1"


@pytest.fixture(scope="module")
def moto_url() -> Iterator[str]:
    """A moto server on a free loopback port for this module."""
    # Loading moto's ~1,200 default AMIs costs seconds and no test here needs them.
    os.environ.setdefault("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def client(moto_url: str, monkeypatch: pytest.MonkeyPatch) -> Callable[[str], Any]:
    """boto3 client factory bound to the moto server with dummy credentials."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.delenv("AWS_PROFILE", raising=False)

    session = boto3.session.Session()  # its own: the process-wide default one caches credentials

    def factory(service: str) -> Any:
        return session.client(
            service,
            region_name=REGION,
            endpoint_url=moto_url,
            config=Config(retries={"max_attempts": 1, "mode": "standard"}),
        )

    return factory


def _bucket(client: Callable[[str], Any], name: str, tags: dict[str, str] | None = None) -> None:
    s3 = client("s3")
    s3.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": REGION})
    if tags:
        s3.put_bucket_tagging(Bucket=name, Tagging={"TagSet": [{"Key": k, "Value": v} for k, v in tags.items()]})


def test_s3_store_lists_only_complete_results_of_its_sweep(client: Callable[[str], Any]) -> None:
    """ready() names the results under results/<sweep-id>/ only (not other sweeps, not other objects);
    instance n of a candidate is '<candidate>/instance-n'."""
    _bucket(client, "tickpath-store-1")
    store = S3Store("tickpath-store-1", client=client("s3"))
    assert store.ready("sw-1") == set()
    store.put("sw-1", "apne1-az4.c6in.xlarge", b'{"status": "ok"}')
    store.put("sw-1", "apne1-az1.c6in.xlarge", b'{"status": "failed"}')
    store.put("sw-2", "apne1-az2.c6in.xlarge", b"{}")
    client("s3").put_object(
        Bucket="tickpath-store-1", Key="results/sw-1/apne1-az4.c6in.xlarge/instance-1.json", Body=b"{}"
    )
    for junk in ("apne1-az4.c6in.xlarge/boot.log", "apne1-az4.c6in.xlarge/instance-x.json", "a/b/instance-1.json"):
        client("s3").put_object(Bucket="tickpath-store-1", Key=f"results/sw-1/{junk}", Body=b"{}")
    store.put("sw-1", "apne1-az1.c6in.xlarge/instance-2", b'{"status": "ok", "instance": 2}')
    assert store.ready("sw-1") == {
        "apne1-az4.c6in.xlarge",
        "apne1-az1.c6in.xlarge",
        "apne1-az4.c6in.xlarge/instance-1",
        "apne1-az1.c6in.xlarge/instance-2",
    }
    assert json.loads(store.get("sw-1", "apne1-az4.c6in.xlarge")) == {"status": "ok"}
    assert json.loads(store.get("sw-1", "apne1-az1.c6in.xlarge/instance-2"))["instance"] == 2


def test_s3_store_pages_through_many_results(client: Callable[[str], Any]) -> None:
    """Results spread over several list pages are all seen (continuation tokens followed)."""
    _bucket(client, "tickpath-store-2")
    s3 = client("s3")
    for i in range(7):
        s3.put_object(Bucket="tickpath-store-2", Key=f"results/sw-big/c{i:04d}.json", Body=b"{}")
    assert len(S3Store("tickpath-store-2", client=s3, page_size=2).ready("sw-big")) == 7


def test_s3_store_errors_are_translated(client: Callable[[str], Any]) -> None:
    """A missing bucket is an InfraError naming the bucket, not a botocore traceback."""
    store = S3Store("no-such-bucket-here", client=client("s3"))
    with pytest.raises(InfraError, match="no-such-bucket-here"):
        store.ready("sw-1")


def test_tag_cleanup_removes_tagged_and_never_touches_untagged(client: Callable[[str], Any]) -> None:
    """Instances, groups, subnets, VPC, bucket, role tagged with the sweep go; everything else stays."""
    ec2, sweep = client("ec2"), "sweep-clean-1"
    tag = [{"Key": TAG_SWEEP_ID, "Value": sweep}]
    other = [{"Key": TAG_SWEEP_ID, "Value": "another-sweep"}]
    ami = "ami-12345678"  # moto accepts any id; no default AMIs are loaded
    vpc = ec2.create_vpc(CidrBlock="10.42.0.0/16", TagSpecifications=[{"ResourceType": "vpc", "Tags": tag}])["Vpc"][
        "VpcId"
    ]
    subnet = ec2.create_subnet(
        VpcId=vpc, CidrBlock="10.42.1.0/24", TagSpecifications=[{"ResourceType": "subnet", "Tags": tag}]
    )["Subnet"]["SubnetId"]
    sg = ec2.create_security_group(
        GroupName="tp-probe",
        Description="probe",
        VpcId=vpc,
        TagSpecifications=[{"ResourceType": "security-group", "Tags": tag}],
    )["GroupId"]

    def launch(tags: list[dict[str, str]] | None, **kw: Any) -> str:
        spec = [{"ResourceType": "instance", "Tags": tags}] if tags else []
        return str(
            ec2.run_instances(
                ImageId=ami, InstanceType="t3.micro", MinCount=1, MaxCount=1, TagSpecifications=spec, **kw
            )["Instances"][0]["InstanceId"]
        )

    tagged = [launch(tag, SubnetId=subnet, SecurityGroupIds=[sg]), launch(tag, SubnetId=subnet)]
    untagged = launch(None)
    foreign = launch(other)
    name_only = launch([{"Key": "Name", "Value": f"tickpath-{sweep}"}])  # right name, no tag: untouched
    _bucket(client, f"tickpath-{sweep}", {TAG_SWEEP_ID: sweep})
    client("s3").put_object(Bucket=f"tickpath-{sweep}", Key=f"results/{sweep}/a.json", Body=b"{}")
    _bucket(client, "someone-elses-bucket")
    iam = client("iam")
    iam.create_role(RoleName=f"tickpath-probe-{sweep}", Path="/tickpath/", AssumeRolePolicyDocument="{}", Tags=tag)
    iam.create_instance_profile(InstanceProfileName=f"tickpath-probe-{sweep}", Path="/tickpath/")
    iam.add_role_to_instance_profile(InstanceProfileName=f"tickpath-probe-{sweep}", RoleName=f"tickpath-probe-{sweep}")
    iam.put_role_policy(
        RoleName=f"tickpath-probe-{sweep}",
        PolicyName="w",
        PolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Action": "s3:PutObject",
                        "Resource": f"arn:aws:s3:::tickpath-{sweep}/results/{sweep}/*",
                    }
                ],
            }
        ),
    )
    iam.create_role(RoleName="tickpath-probe-other", Path="/tickpath/", AssumeRolePolicyDocument="{}", Tags=other)

    cleaner = AwsTagCleaner(sweep, region=REGION, client_factory=client, waiter_delay_s=1)
    deleted = cleaner.run()

    states = {
        i["InstanceId"]: i["State"]["Name"] for r in ec2.describe_instances()["Reservations"] for i in r["Instances"]
    }
    assert all(states[i] == "terminated" for i in tagged)
    assert {states[i] for i in (untagged, foreign, name_only)} == {"running"}
    # moto implements no DescribePlacementGroups: the cleaner reports that and carries on with the rest.
    assert all("placement groups" in w for w in cleaner.warnings)
    assert subnet not in [s["SubnetId"] for s in ec2.describe_subnets()["Subnets"]]
    assert sg not in [g["GroupId"] for g in ec2.describe_security_groups()["SecurityGroups"]]
    assert vpc not in [v["VpcId"] for v in ec2.describe_vpcs()["Vpcs"]]
    buckets = {b["Name"] for b in client("s3").list_buckets()["Buckets"]}
    assert f"tickpath-{sweep}" not in buckets and "someone-elses-bucket" in buckets
    roles = {r["RoleName"] for r in iam.list_roles()["Roles"]}
    assert f"tickpath-probe-{sweep}" not in roles and "tickpath-probe-other" in roles
    assert f"s3:bucket/tickpath-{sweep}" in deleted and f"ec2:vpc/{vpc}" in deleted


def test_tag_cleanup_is_idempotent_when_nothing_is_left(client: Callable[[str], Any]) -> None:
    """Running the cleanup for a sweep with nothing left deletes nothing and does not fail."""
    assert AwsTagCleaner("sweep-nothing-here", region=REGION, client_factory=client, waiter_delay_s=1).run() == []


def _aws_cfg(az_ids: list[str], types: list[str]) -> SweepConfig:
    return parse_config(
        {
            "sweep": {
                "name": "pf",
                "provider": "aws",
                "region": REGION,
                "az_ids": az_ids,
                "instance_types": types,
                "ttl_minutes": 30,
            },
            "probe": {"methods": ["ws"], "duration_s": 60},
        }
    )


def test_preflight_rejects_unknown_zone_ids_and_types_before_creating_anything(client: Callable[[str], Any]) -> None:
    """Preflight names an AZ ID the region lacks and an instance type not offered; a good plan passes."""
    zones = client("ec2").describe_availability_zones()["AvailabilityZones"]
    good = zones[0]["ZoneId"]
    with pytest.raises(ConfigError, match="apne1-az9"):
        aws_preflight(_aws_cfg([good, "apne1-az9"], ["c6in.xlarge"]), client)
    with pytest.raises(ConfigError, match="not offered"):
        aws_preflight(_aws_cfg([good], ["c6in.xlarge", "zz9.huge"]), client)
    aws_preflight(_aws_cfg([good], ["t3.micro"]), client)


def test_preflight_reports_rejected_credentials_as_config_error(moto_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """With no credentials at all, preflight is a ConfigError telling how to provide them."""
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    session = boto3.session.Session()

    def factory(service: str) -> Any:
        return session.client(service, region_name=REGION, endpoint_url=moto_url)

    with pytest.raises(ConfigError, match="no AWS credentials"):
        aws_preflight(_aws_cfg(["apne1-az1"], ["t3.micro"]), factory)
