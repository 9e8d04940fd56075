"""TCP and TLS sample operations against local servers, and DNS answers and edge detection."""

from __future__ import annotations

import pytest

from tests.probe.conftest import Cert
from tickpath.errors import ResolutionError
from tickpath.probe import ProbeConfig, run_probe
from tickpath.probe.dns import detect_edge, resolve


async def test_tls_handshake_is_measured_per_ip_with_sni(tls_server: int, self_signed: Cert) -> None:
    """With the server's CA trusted, every TLS handshake to the IP succeeds and is recorded."""
    cfg = ProbeConfig(
        methods=("tls",),
        rest_url=f"https://localhost:{tls_server}",
        ws_url=f"wss://localhost:{tls_server}",
        ca_file=str(self_signed.cert),
        samples=10,
        warmup=1,
        rate=200,
        imds=False,
        chrony=False,
    )
    result = await run_probe(cfg)
    data = result.to_dict()
    tls = data["methods"]["tls"]
    assert result.errors == []
    assert tls["summary"]["count"] == 10 and tls["summary"]["losses"] == 0
    assert f"127.0.0.1:{tls_server}" in tls["per_ip"]


async def test_untrusted_certificate_is_a_handshake_error(tls_server: int) -> None:
    """Without the CA, every handshake fails as HandshakeError and is counted as a loss."""
    cfg = ProbeConfig(
        methods=("tls",),
        rest_url=f"https://127.0.0.1:{tls_server}",
        ws_url=f"wss://127.0.0.1:{tls_server}",
        samples=4,
        warmup=0,
        rate=200,
        imds=False,
        chrony=False,
    )
    result = await run_probe(cfg)
    tls = result.to_dict()["methods"]["tls"]
    assert tls["summary"]["losses"] == 4 and tls["errors"] == {"HandshakeError": 4}
    assert "certificate" in tls["last_error"].lower()
    assert result.exit_code == 4


async def test_tcp_probes_every_ip_on_rest_and_ws_ports(local_venue) -> None:  # type: ignore[no-untyped-def]
    """tcp covers each IP on both the REST and WS ports plus any extra port (here a closed one)."""
    cfg = ProbeConfig(
        methods=("tcp",),
        rest_url=local_venue.rest_url,
        ws_url=local_venue.ws_url,
        tcp_ports=(1,),
        samples=6,
        warmup=0,
        rate=500,
        imds=False,
        chrony=False,
    )
    result = await run_probe(cfg)
    per = result.stats["tcp"].per_target
    assert set(per) == {f"127.0.0.1:{local_venue.port}", "127.0.0.1:1"}
    assert per[f"127.0.0.1:{local_venue.port}"].latency.count == 3
    assert per["127.0.0.1:1"].latency.losses == 3


async def test_dns_resolves_literal_and_localhost() -> None:
    """An IP literal resolves to itself; localhost gives at least one loopback address."""
    r = await resolve("127.0.0.1", 2)
    assert r.ips == ("127.0.0.1",) and len(r.samples_ns) == 2 and r.edge is None
    r = await resolve("localhost", reverse=1)
    assert set(r.ips) & {"127.0.0.1", "::1"}
    assert list(r.ptr) == [r.ips[0]]


async def test_dns_failure_is_a_resolution_error() -> None:
    """A name that does not exist raises ResolutionError naming it."""
    with pytest.raises(ResolutionError, match=r"no-such-host\.invalid"):
        await resolve("no-such-host.invalid")


@pytest.mark.parametrize(
    ("chain", "provider"),
    [
        (["fstream.binance.com", "d2rkfp6ot9bmgu.cloudfront.net"], "AWS CloudFront"),
        (["api.example.com", "a1234.awsglobalaccelerator.com."], "AWS Global Accelerator"),
        (["www.example.com", "e1.a.akamaiedge.net"], "Akamai"),
        (["origin.example.com"], None),
        (["notcloudfront.net.example.com"], None),
        (["api.binance.com", "server-13-225-1-2.nrt57.r.cloudfront.net"], "AWS CloudFront"),
    ],
)
def test_edge_detection_from_cname_chain(chain: list[str], provider: str | None) -> None:
    """A CNAME into a CDN or accelerator is flagged with its provider; an origin is not."""
    edge = detect_edge(chain)
    assert (edge["provider"] if edge else None) == provider
