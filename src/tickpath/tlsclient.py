"""Client TLS contexts for every command that connects out (feed, probe, busbench, ingest).

One place turns a missing or unreadable CA bundle or client certificate into a one-line ConfigError
(naming the files) instead of a traceback from :mod:`ssl`.
"""

from __future__ import annotations

import ssl
from pathlib import Path

from tickpath.errors import ConfigError


def client_context(
    ca: str | Path | None = None,
    cert: str | Path | None = None,
    key: str | Path | None = None,
    *,
    verify: bool = True,
    verify_host: bool = True,
) -> ssl.SSLContext:
    """Trust ``ca`` (or the system store when None), present ``cert``/``key`` if given. ``verify=False``
    accepts any certificate (probe's --insecure); ``verify_host=False`` checks the chain but not the name."""
    try:
        ctx = ssl.create_default_context(cafile=str(ca) if ca else None)
        if cert:
            ctx.load_cert_chain(str(cert), str(key) if key else None)
    except (OSError, ssl.SSLError) as exc:
        files = ", ".join(f"{k}={v}" for k, v in (("ca", ca), ("cert", cert), ("key", key)) if v)
        raise ConfigError(f"cannot load TLS files ({files}): {exc.strerror or exc}") from exc
    if not verify_host or not verify:
        ctx.check_hostname = False
    if not verify:
        ctx.verify_mode = ssl.CERT_NONE
    return ctx
