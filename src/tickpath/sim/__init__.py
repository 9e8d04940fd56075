"""A Binance-compatible market-data simulator (spot and USD-M futures) on loopback.

::

    from tickpath.sim import Simulator, SimConfig, ZoneConfig, LatencyProfile

    async with Simulator(SimConfig(symbols=("BTCUSDT",), zones=(ZoneConfig("a", LatencyProfile(5.0)),))) as sim:
        ep = sim.endpoint("futures", zone="a")
        # ep.ws_url + "/ws/btcusdt@depth@100ms", ep.rest_url + "/fapi/v1/depth?symbol=BTCUSDT&limit=1000"
        truth = sim.ground_truth("futures", "BTCUSDT", update_id)
        sim.faults.gap("futures", "BTCUSDT")

See ``docs/sim.md`` for the served surface, the limits, the fault API and what was chosen where
Binance does not document the wire detail.
"""

from tickpath.sim.config import LatencyProfile, ReplayConfig, SimConfig, ZoneConfig, parse_zones
from tickpath.sim.faults import FaultPlan, Faults
from tickpath.sim.market import BookSnapshot
from tickpath.sim.server import Endpoint, Simulator

__all__ = [
    "BookSnapshot",
    "Endpoint",
    "FaultPlan",
    "Faults",
    "LatencyProfile",
    "ReplayConfig",
    "SimConfig",
    "Simulator",
    "ZoneConfig",
    "parse_zones",
]
