"""Per-run TLS material: a throwaway CA, one server certificate and one client certificate.

Generated fresh for every run with ``cryptography`` and written with owner-only permissions, so no
certificate or key ever needs to live in the repository (the original latency test committed
expired ones). EC P-256 keys keep generation fast (milliseconds) and handshakes cheap.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from tickpath.errors import ConfigError

DEFAULT_HOSTS = ("localhost", "127.0.0.1")


@dataclass(frozen=True)
class TlsFiles:
    """Paths of a CA bundle and one certificate/key pair (PEM)."""

    ca: Path
    cert: Path
    key: Path

    def check(self) -> None:
        """Raise :class:`ConfigError` when a file is missing."""
        for p in (self.ca, self.cert, self.key):
            if not Path(p).is_file():
                raise ConfigError(f"TLS file not found: {p}")


@dataclass(frozen=True)
class TlsMaterial:
    """Everything one run needs: the CA, the servers' pair and the client's pair."""

    ca: Path
    server: TlsFiles
    client: TlsFiles


def _name(cn: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "tickpath busbench"),
            x509.NameAttribute(NameOID.COMMON_NAME, cn),
        ]
    )


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    data = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)


def _sans(hosts: Iterable[str]) -> list[x509.GeneralName]:
    out: list[x509.GeneralName] = []
    for h in hosts:
        try:
            out.append(x509.IPAddress(ipaddress.ip_address(h)))
        except ValueError:
            out.append(x509.DNSName(h))
    return out


def generate(directory: str | Path, hosts: Iterable[str] = DEFAULT_HOSTS, *, valid_days: int = 2) -> TlsMaterial:
    """Create a CA and server/client certificates under ``directory``.

    ``hosts`` become the server certificate's subject alternative names (names and IPs); every
    server of the cluster shares the one certificate, which is also used for routes. Validity is
    short on purpose: the material belongs to one run.
    """
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    hosts = list(hosts)
    if not hosts:
        raise ConfigError("TLS material needs at least one host name or IP")
    now = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)
    validity = (now, now + dt.timedelta(days=valid_days))
    ca_key, ca_cert = _ca(validity)
    ca_path = d / "ca.pem"
    ca_path.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))

    def leaf(stem: str, cn: str, usages: list[x509.ObjectIdentifier]) -> TlsFiles:
        cert, key = _leaf(ca_key, ca_cert, cn, usages, hosts, validity)
        cert_path, key_path = d / f"{stem}-cert.pem", d / f"{stem}-key.pem"
        cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        _write_key(key_path, key)
        return TlsFiles(ca_path, cert_path, key_path)

    # Servers present their certificate to clients and to each other on routes, so they need
    # both server and client usage.
    server = leaf("server", hosts[0], [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH])
    client = leaf("client", "busbench client", [ExtendedKeyUsageOID.CLIENT_AUTH])
    return TlsMaterial(ca_path, server, client)


def _ca(validity: tuple[dt.datetime, dt.datetime]) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    """A self-signed CA that may sign leaf certificates only (path length 0)."""
    key = ec.generate_private_key(ec.SECP256R1())
    usage = x509.KeyUsage(
        digital_signature=True,
        key_cert_sign=True,
        crl_sign=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        encipher_only=False,
        decipher_only=False,
    )
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name("busbench run CA"))
        .issuer_name(_name("busbench run CA"))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(validity[0])
        .not_valid_after(validity[1])
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(usage, critical=True)
        .sign(key, hashes.SHA256())
    )
    return key, cert


def _leaf(
    ca_key: ec.EllipticCurvePrivateKey,
    ca_cert: x509.Certificate,
    cn: str,
    usages: list[x509.ObjectIdentifier],
    hosts: list[str],
    validity: tuple[dt.datetime, dt.datetime],
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    """A certificate for ``cn`` with ``usages`` and ``hosts`` as its names, signed by the CA."""
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(cn))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(validity[0])
        .not_valid_after(validity[1])
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
        .add_extension(x509.SubjectAlternativeName(_sans(hosts)), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    return cert, key
