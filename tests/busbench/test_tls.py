"""Per-run TLS material: a CA that signs server and client certificates usable by ssl."""

from __future__ import annotations

import ipaddress
import ssl
import stat
from pathlib import Path

from cryptography import x509

from tickpath.busbench import tls
from tickpath.tlsclient import client_context


def test_generated_material_loads_and_names_the_hosts(tmp_path: Path) -> None:
    """Certificates chain to the run's CA, carry the hosts as SANs, and keys are owner-only."""
    m = tls.generate(tmp_path, ["localhost", "10.1.2.3"])
    cert = x509.load_pem_x509_certificate(m.server.cert.read_bytes())
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "localhost" in san.get_values_for_type(x509.DNSName)
    assert ipaddress.ip_address("10.1.2.3") in san.get_values_for_type(x509.IPAddress)
    assert stat.S_IMODE(m.server.key.stat().st_mode) == 0o600
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(m.ca))
    server_ctx.load_cert_chain(str(m.server.cert), str(m.server.key))
    ctx = client_context(m.ca, m.client.cert, m.client.key)
    assert ctx.verify_mode == ssl.CERT_REQUIRED


def test_each_run_gets_a_new_ca(tmp_path: Path) -> None:
    """Two generations never share a CA (nothing reusable is ever committed)."""
    a = tls.generate(tmp_path / "a").ca.read_bytes()
    b = tls.generate(tmp_path / "b").ca.read_bytes()
    assert a != b
