"""``tickpath probe``: how far, in microseconds and with what tail, this machine is from a venue.

Library API::

    from tickpath.probe import ProbeConfig, run_probe
    result = await run_probe(ProbeConfig(venue="futures", methods=("tcp", "ws")))
    result.to_json()  # schema "tickpath.probe/1", documented in docs/probe.md
"""

from tickpath.probe.config import METHODS, ProbeConfig, parse_methods
from tickpath.probe.runner import SCHEMA, ProbeResult, run_probe

__all__ = ["METHODS", "SCHEMA", "ProbeConfig", "ProbeResult", "parse_methods", "run_probe"]
