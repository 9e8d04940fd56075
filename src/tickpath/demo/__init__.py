"""``tickpath demo``: every capability working together against the simulator, then the report.

::

    from tickpath.demo import DemoConfig, run_demo
    summary = await run_demo(DemoConfig.quick())
    summary.sweep.winner, summary.report_html

See ``docs/demo.md`` for the steps, what each writes, and how long each takes.
"""

from tickpath.demo.config import DemoConfig, default_results_dir
from tickpath.demo.progress import DemoProgress
from tickpath.demo.run import DemoSummary, run_demo

__all__ = ["DemoConfig", "DemoProgress", "DemoSummary", "default_results_dir", "run_demo"]
