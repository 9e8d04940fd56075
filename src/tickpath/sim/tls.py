"""A self-signed certificate for ``127.0.0.1``/``localhost``, generated per simulator run.

Clients trust it through :attr:`TlsMaterial.cafile` (or :meth:`TlsMaterial.client_context`), so
``wss://`` and ``https://`` paths are exercised without touching the system trust store.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import ssl
import tempfile
from dataclasses import dataclass
from pathlib import Path

from tickpath.errors import ConfigError


@dataclass(frozen=True)
class TlsMaterial:
    directory: Path
    certfile: Path
    keyfile: Path

    @property
    def cafile(self) -> Path:
        return self.certfile  # self-signed: the certificate is its own authority

    def server_context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(self.certfile, self.keyfile)
        return ctx

    def client_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.cafile))


def generate(host: str, directory: Path | None = None) -> TlsMaterial:
    """Write a fresh key and self-signed certificate valid for ``host``, localhost and 127.0.0.1."""
    try:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID
    except ImportError as exc:  # pragma: no cover - cryptography ships with the test extras
        raise ConfigError("--tls needs the 'cryptography' package") from exc
    d = directory or Path(tempfile.mkdtemp(prefix="tickpath-sim-tls-"))
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "tickpath sim")])
    alt: list[x509.GeneralName] = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    try:
        alt.append(x509.IPAddress(ipaddress.ip_address(host)))
    except ValueError:
        alt.append(x509.DNSName(host))
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=7))
        .add_extension(x509.SubjectAlternativeName(alt), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    certfile, keyfile = d / "sim-cert.pem", d / "sim-key.pem"
    certfile.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    keyfile.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    keyfile.chmod(0o600)
    return TlsMaterial(d, certfile, keyfile)
