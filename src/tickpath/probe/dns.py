"""DNS: every A/AAAA answer, the CNAME chain, resolver time, and whether a CDN fronts the host.

Resolution goes through the system resolver (what a trading process would use), so the time
includes any local cache; the first sample is usually the uncached one and is reported on its own.
The CNAME chain comes from ``gethostbyname_ex`` aliases, which glibc fills with every name the
answer passed through. An edge in front of the exchange (CloudFront, Global Accelerator, ...)
matters because TCP and TLS times then measure the edge, not the exchange's own servers. It is
recognised by name (CNAME chain, reverse names) and, failing that, by address: each answer is
matched against the checked-in CDN prefix table of :mod:`tickpath.probe.networks` (no whois or
other lookup service, so it works where only the exchange is reachable).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import time
from dataclasses import dataclass, field
from typing import Any

from tickpath.errors import ResolutionError
from tickpath.probe.networks import classify

# Suffixes of names that belong to edge networks rather than the origin.
EDGE_SUFFIXES: tuple[tuple[str, str], ...] = (
    ("cloudfront.net", "AWS CloudFront"),
    ("awsglobalaccelerator.com", "AWS Global Accelerator"),
    ("elb.amazonaws.com", "AWS Elastic Load Balancer"),
    ("akamaiedge.net", "Akamai"),
    ("akamai.net", "Akamai"),
    ("edgekey.net", "Akamai"),
    ("edgesuite.net", "Akamai"),
    ("cloudflare.net", "Cloudflare"),
    ("cdn.cloudflare.net", "Cloudflare"),
    ("fastly.net", "Fastly"),
    ("fastlylb.net", "Fastly"),
    ("azureedge.net", "Azure CDN"),
    ("azurefd.net", "Azure Front Door"),
    ("googleusercontent.com", "Google Cloud"),
    ("incapdns.net", "Imperva"),
)


@dataclass(frozen=True)
class DnsAnswer:
    host: str
    canonical: str
    cname_chain: tuple[str, ...]
    ipv4: tuple[str, ...]
    ipv6: tuple[str, ...]
    resolve_ns: int


@dataclass
class DnsResult:
    host: str
    answer: DnsAnswer | None
    samples_ns: list[int] = field(default_factory=list)
    edge: dict[str, str] | None = None
    ptr: dict[str, str | None] = field(default_factory=dict)  # reverse names of the addresses

    @property
    def ips(self) -> tuple[str, ...]:
        if self.answer is None:
            return ()
        return self.answer.ipv4 + self.answer.ipv6

    def to_dict(self) -> dict[str, Any]:
        a = self.answer
        return {
            "host": self.host,
            "canonical": a.canonical if a else None,
            "cname_chain": list(a.cname_chain) if a else [],
            "a": list(a.ipv4) if a else [],
            "aaaa": list(a.ipv6) if a else [],
            "first_resolve_us": round(self.samples_ns[0] / 1e3, 3) if self.samples_ns else None,
            "edge": self.edge,
            "ptr": dict(self.ptr),
            "networks": {ip: classify(ip) for ip in self.ips},
        }


def detect_edge(names: tuple[str, ...] | list[str]) -> dict[str, str] | None:
    """The edge network a CNAME chain passes through, or None when it points at the origin."""
    for name in names:
        n = name.lower().rstrip(".")
        for suffix, provider in EDGE_SUFFIXES:
            if n == suffix or n.endswith("." + suffix):
                return {
                    "provider": provider,
                    "via": n,
                    "note": f"{provider} fronts this host: TCP/TLS times measure its edge, not the exchange",
                }
    return None


def detect_edge_by_address(ips: tuple[str, ...] | list[str]) -> dict[str, str] | None:
    """The CDN whose published prefixes hold one of ``ips``, or None (unknown, maybe the origin)."""
    for ip in ips:
        net = classify(ip)
        if net is not None and net["kind"] == "cdn":
            return {
                "provider": net["provider"],
                "via": f"{ip} in {net['prefix']} (AS{net['asn']}, checked-in prefix table)",
                "note": f"{net['provider']} fronts this host: TCP/TLS times measure its edge, not the exchange",
            }
    return None


def _resolve_blocking(host: str) -> DnsAnswer:
    t0 = time.perf_counter_ns()
    try:
        infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise ResolutionError(f"cannot resolve {host!r}: {exc.strerror or exc}") from exc
    elapsed = time.perf_counter_ns() - t0
    v4: list[str] = []
    v6: list[str] = []
    for family, *_rest, sockaddr in infos:
        ip = str(sockaddr[0])
        bucket = v6 if family == socket.AF_INET6 else v4
        if ip not in bucket:
            bucket.append(ip)
    canonical, chain = host, [host]
    if not _is_ip(host):
        try:
            canonical, aliases, _ = socket.gethostbyname_ex(host)
            chain = [host] + [a for a in aliases if a != host]
            if canonical not in chain:
                chain.append(canonical)
        except OSError:
            pass  # AAAA-only or resolver without alias support: addresses are what matter
    return DnsAnswer(host, canonical, tuple(chain), tuple(v4), tuple(v6), elapsed)


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _reverse_blocking(ip: str) -> str | None:
    try:
        return socket.gethostbyaddr(ip)[0]
    except OSError:
        return None


async def resolve(host: str, samples: int = 1, *, reverse: int = 0, reverse_timeout: float = 1.0) -> DnsResult:
    """Resolve ``host`` ``samples`` times in a worker thread (the call blocks), timing each.

    With ``reverse`` > 0 the first that many addresses are also looked up in reverse: an edge
    without a CNAME (CloudFront by A record, an accelerator's anycast IPs) often names itself there.
    """
    loop = asyncio.get_running_loop()
    result = DnsResult(host, None)
    for _ in range(max(1, samples)):
        answer = await loop.run_in_executor(None, _resolve_blocking, host)
        result.samples_ns.append(answer.resolve_ns)
        if result.answer is None:
            result.answer = answer
    assert result.answer is not None
    for ip in result.ips[:reverse]:
        try:
            result.ptr[ip] = await asyncio.wait_for(loop.run_in_executor(None, _reverse_blocking, ip), reverse_timeout)
        except TimeoutError:
            result.ptr[ip] = None
    names = list(result.answer.cname_chain) + [n for n in result.ptr.values() if n]
    result.edge = detect_edge(names) or detect_edge_by_address(result.ips)
    return result
