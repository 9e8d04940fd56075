"""Where candidates' results arrive: one small interface, a directory for ``local``, S3 for ``aws``.

A result is one JSON document per machine under ``results/<sweep-id>/``, the only prefix a probe
machine's role may write: ``<candidate>.json`` from a candidate's instance 0 and
``<candidate>/instance-<n>.json`` from its instance ``n`` (``instances_per_candidate > 1``). The store
names them ``<candidate>`` and ``<candidate>/instance-<n>`` (:func:`result_name`). Writers make each
object appear atomically (S3 puts are atomic; the directory store renames a temporary file), so a
reader never sees half a result.
"""

from __future__ import annotations

import contextlib
import os
import re
from pathlib import Path
from typing import Any, Protocol

from tickpath.errors import ConfigError, InfraError

_SAFE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_INSTANCE = re.compile(r"^instance-([1-9][0-9]{0,3})$")


def result_name(candidate: str, instance: int = 0) -> str:
    """The store's name for the result of one instance of a candidate."""
    return candidate if instance == 0 else f"{candidate}/instance-{instance}"


def split_result_name(name: str) -> tuple[str, int]:
    """``(candidate, instance)`` of a result name; a name of no known shape is a ConfigError."""
    candidate, _, rest = name.partition("/")
    if not rest:
        return candidate, 0
    m = _INSTANCE.match(rest)
    if not m:
        raise ConfigError(f"result name {name!r} is neither <candidate> nor <candidate>/instance-<n>")
    return candidate, int(m[1])


def result_key(sweep_id: str, name: str) -> str:
    """The object key of one result (``name`` from :func:`result_name`)."""
    candidate, instance = split_result_name(name)
    for label, value in (("sweep id", sweep_id), ("candidate", candidate)):
        if not _SAFE.match(value):
            raise ConfigError(f"{label} {value!r} may hold only letters, digits, '.', '_' and '-'")
    return f"results/{sweep_id}/{result_name(candidate, instance)}.json"


def _name_of(relative: str) -> str | None:
    """The result name of a key relative to the sweep's prefix, or None for anything else."""
    if not relative.endswith(".json") or relative.startswith(".") or "/." in relative:
        return None
    try:
        candidate, _instance = split_result_name(relative[:-5])
    except ConfigError:
        return None
    return relative[:-5] if _SAFE.match(candidate) else None


class ResultStore(Protocol):
    """Read side used by the orchestrator; ``put`` is what an agent or boot script does."""

    def ready(self, sweep_id: str) -> set[str]:
        """Names (:func:`result_name`) of the results that have arrived."""
        ...

    def get(self, sweep_id: str, name: str) -> bytes:
        """The raw result document of one candidate (or one of its instances)."""
        ...

    def put(self, sweep_id: str, name: str, body: bytes) -> None:
        """Store one result (atomically)."""
        ...


class DirectoryStore:
    """Results as files under ``root/results/<sweep-id>/``: the ``local`` provider's bucket."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def _dir(self, sweep_id: str) -> Path:
        return self.root / Path(result_key(sweep_id, "x")).parent

    def ready(self, sweep_id: str) -> set[str]:
        d = self._dir(sweep_id)
        try:
            entries = list(os.scandir(d))
        except FileNotFoundError:
            return set()
        relative: list[str] = []
        for entry in entries:
            if entry.is_dir():  # a candidate's instances 1..n-1
                with contextlib.suppress(OSError):
                    relative += [f"{entry.name}/{n}" for n in os.listdir(entry.path)]
            else:
                relative.append(entry.name)
        return {name for name in map(_name_of, relative) if name is not None}

    def get(self, sweep_id: str, name: str) -> bytes:
        path = self.root / result_key(sweep_id, name)
        try:
            return path.read_bytes()
        except OSError as exc:
            raise InfraError(f"result of {name} unreadable at {path}: {exc}") from exc

    def put(self, sweep_id: str, name: str, body: bytes) -> None:
        path = self.root / result_key(sweep_id, name)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_bytes(body)
        os.replace(tmp, path)  # atomic: the orchestrator sees all of it or nothing


class S3Store:
    """Results in an S3 bucket (the ``aws`` provider): list and get under ``results/<sweep-id>/``."""

    def __init__(
        self,
        bucket: str,
        *,
        client: Any = None,
        region: str | None = None,
        endpoint_url: str | None = None,
        page_size: int = 1000,
    ) -> None:
        self.bucket = bucket
        self.page_size = page_size
        if client is None:
            try:
                import boto3
            except ImportError as exc:  # pragma: no cover - boto3 is in the aws extra
                raise ConfigError("the S3 result store needs boto3: pip install 'tickpath[aws]'") from exc
            client = boto3.client("s3", region_name=region, endpoint_url=endpoint_url)
        self._s3 = client

    def _call(self, what: str, fn: Any, **kwargs: Any) -> Any:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return fn(**kwargs)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "?")
            raise InfraError(f"S3 {what} on bucket {self.bucket!r} failed ({code}): {exc}") from exc
        except BotoCoreError as exc:
            raise InfraError(f"S3 {what} on bucket {self.bucket!r} failed: {exc}") from exc

    def ready(self, sweep_id: str) -> set[str]:
        prefix = str(Path(result_key(sweep_id, "x")).parent) + "/"
        names: set[str] = set()
        token: str | None = None
        while True:
            kwargs: dict[str, Any] = {"Bucket": self.bucket, "Prefix": prefix, "MaxKeys": self.page_size}
            if token:
                kwargs["ContinuationToken"] = token
            page = self._call("list", self._s3.list_objects_v2, **kwargs)
            for obj in page.get("Contents", []):
                name = _name_of(obj["Key"][len(prefix) :])
                if name is not None:
                    names.add(name)
            if not page.get("IsTruncated"):
                return names
            token = page.get("NextContinuationToken")

    def get(self, sweep_id: str, name: str) -> bytes:
        resp = self._call("get", self._s3.get_object, Bucket=self.bucket, Key=result_key(sweep_id, name))
        body: bytes = resp["Body"].read()
        return body

    def put(self, sweep_id: str, name: str, body: bytes) -> None:
        self._call(
            "put",
            self._s3.put_object,
            Bucket=self.bucket,
            Key=result_key(sweep_id, name),
            Body=body,
            ContentType="application/json",
        )
