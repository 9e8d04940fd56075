"""``tickpath tune``: show, apply (root) and revert the Linux settings that lower latency on EC2.

Library API::

    from tickpath.tune import TuneConfig, inspect, apply, revert
    report = inspect(TuneConfig())          # what would change, and what this instance lacks
    apply(TuneConfig()); revert(TuneConfig())
"""

from tickpath.tune.knobs import EXCLUDED, parse_ethtool_coalesce
from tickpath.tune.plan import TuneConfig, TuneReport, apply, inspect, revert

__all__ = ["EXCLUDED", "TuneConfig", "TuneReport", "apply", "inspect", "parse_ethtool_coalesce", "revert"]
