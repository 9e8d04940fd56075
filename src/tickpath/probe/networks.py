"""Which network an address belongs to, from a small checked-in prefix table: no lookup service.

An exchange host fronted by a CDN answers TCP and TLS from the CDN's edge, so those figures measure
the edge, not the exchange; a traceroute that enters a CDN's prefixes says where. Finding the AS of
an address normally takes a network service (whois, Team Cymru's DNS, RIPEstat, or ``mtr -z``,
which asks ``origin.asn.cymru.com`` over DNS per hop and shows ``AS???`` offline). A probe machine
may have no route to any of them, so tickpath matches addresses against the published prefix lists
of the few networks that front exchanges, checked in below, and says "not in the table" rather than
"origin" for everything else.

Sources (compiled 2026-12-06 from the providers' own published lists, as mirrored in public
repositories; refresh by re-reading the same URLs):

* Cloudflare, AS13335: https://www.cloudflare.com/ips-v4 and /ips-v6 (unchanged 2023-2024).
* Fastly, AS54113: https://api.fastly.com/public-ip-list (``addresses``/``ipv6_addresses``, 2023-06).
* AWS CloudFront, AS16509: https://d7uri8nf7uskq.cloudfront.net/tools/list-cloudfront-ips,
  ``CLOUDFRONT_GLOBAL_IP_LIST`` (the same prefixes as service ``CLOUDFRONT`` in
  https://ip-ranges.amazonaws.com/ip-ranges.json); the /24 and larger prefixes outside China, 2023-2024.
* Akamai, AS20940/AS16625: Akamai publishes no list of its edge addresses; these are the aggregate
  prefixes announced by its ASes (BGPView, 2022-03). Partial by nature.

Special-purpose ranges (loopback, RFC 1918, carrier-grade NAT, link-local) are named from the
``ipaddress`` module's own tables.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from functools import cache
from typing import Any

TABLE_DATE = "2026-12-06"
METHOD = (
    f"address matched against tickpath's checked-in CDN prefix table (tickpath.probe.networks, {TABLE_DATE}): "
    "no whois or DNS lookup; addresses outside it are unknown, not necessarily the origin"
)


@dataclass(frozen=True)
class Network:
    provider: str
    asn: int
    kind: str  # "cdn"
    prefixes: tuple[str, ...]


# fmt: off
NETWORKS: tuple[Network, ...] = (
    Network(
        "Cloudflare",
        13335,
        "cdn",
        (
            "173.245.48.0/20", "103.21.244.0/22", "103.22.200.0/22", "103.31.4.0/22", "141.101.64.0/18",
            "108.162.192.0/18", "190.93.240.0/20", "188.114.96.0/20", "197.234.240.0/22", "198.41.128.0/17",
            "162.158.0.0/15", "104.16.0.0/13", "104.24.0.0/14", "172.64.0.0/13", "131.0.72.0/22",
            "2400:cb00::/32", "2606:4700::/32", "2803:f800::/32", "2405:b500::/32", "2405:8100::/32",
            "2a06:98c0::/29", "2c0f:f248::/32",
        ),
    ),
    Network(
        "Fastly",
        54113,
        "cdn",
        (
            "23.235.32.0/20", "43.249.72.0/22", "103.244.50.0/24", "103.245.222.0/23", "103.245.224.0/24",
            "104.156.80.0/20", "140.248.64.0/18", "140.248.128.0/17", "146.75.0.0/17", "151.101.0.0/16",
            "157.52.64.0/18", "167.82.0.0/17", "167.82.128.0/20", "167.82.160.0/20", "167.82.224.0/20",
            "172.111.64.0/18", "185.31.16.0/22", "199.27.72.0/21", "199.232.0.0/16",
            "2a04:4e40::/32", "2a04:4e42::/32",
        ),
    ),
    Network(
        "AWS CloudFront",
        16509,
        "cdn",
        (
            "13.32.0.0/15", "13.35.0.0/16", "13.224.0.0/14", "13.249.0.0/16", "15.158.0.0/16",
            "18.64.0.0/14", "18.154.0.0/15", "18.160.0.0/15", "18.164.0.0/15", "18.172.0.0/15",
            "18.238.0.0/15", "18.244.0.0/15", "52.46.0.0/18", "52.84.0.0/15", "52.124.128.0/17",
            "52.222.128.0/17", "54.182.0.0/16", "54.192.0.0/16", "54.230.0.0/16", "54.239.128.0/18",
            "54.239.192.0/19", "54.240.128.0/18", "64.252.64.0/18", "64.252.128.0/18", "65.8.0.0/16",
            "65.9.0.0/17", "65.9.128.0/18", "70.132.0.0/18", "71.152.0.0/17", "99.84.0.0/16",
            "99.86.0.0/16", "108.138.0.0/15", "108.156.0.0/14", "130.176.0.0/16", "143.204.0.0/16",
            "144.220.0.0/16", "204.246.164.0/22", "204.246.168.0/22", "204.246.172.0/23",
            "204.246.174.0/23", "204.246.176.0/20", "205.251.192.0/19", "205.251.249.0/24",
            "205.251.250.0/23", "205.251.252.0/23", "205.251.254.0/24", "216.137.32.0/19",
        ),
    ),
    Network(
        "Akamai",
        20940,
        "cdn",
        (
            "2.16.0.0/13", "23.0.0.0/12", "23.32.0.0/11", "23.64.0.0/14", "23.72.0.0/13", "23.192.0.0/11",
            "72.246.0.0/15", "88.221.0.0/16", "92.122.0.0/15", "95.100.0.0/15", "96.6.0.0/15",
            "96.16.0.0/15", "104.64.0.0/10", "172.224.0.0/12", "173.222.0.0/15", "184.24.0.0/13",
            "184.50.0.0/15", "184.84.0.0/14",
        ),
    ),
)
# fmt: on

IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


@cache
def _parsed() -> tuple[tuple[IpNetwork, Network], ...]:
    return tuple((ipaddress.ip_network(p), n) for n in NETWORKS for p in n.prefixes)


def _special(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str | None:
    if ip.is_loopback:
        return "loopback"
    if ip.is_link_local:
        return "link-local"
    if isinstance(ip, ipaddress.IPv4Address) and ip in ipaddress.ip_network("100.64.0.0/10"):
        return "carrier-grade NAT (RFC 6598; inside a cloud provider's network)"
    if ip.is_private:
        return "private (RFC 1918 / unique local)"
    return None


def classify(address: str | None) -> dict[str, Any] | None:
    """The network of ``address`` from the table: ``{"provider", "asn", "kind", "prefix"}``, a
    special-purpose range (``{"kind": "special", "provider": "loopback"}``), or None (unknown)."""
    if not address:
        return None
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return None
    special = _special(ip)
    if special is not None:
        return {"provider": special, "asn": None, "kind": "special", "prefix": None}
    for net, owner in _parsed():
        if ip.version == net.version and ip in net:
            return {"provider": owner.provider, "asn": owner.asn, "kind": owner.kind, "prefix": str(net)}
    return None
