"""tickpath: where should my server live, how do I get the market data there correctly, and what
does my message bus cost me. See the README for the tour; each capability is a subpackage with a
library API, and ``tickpath.cli`` is a thin shell over them."""

# The one place the version lives (pyproject.toml reads it from here). A literal rather than
# importlib.metadata: that lookup costs ~50 ms per process, and sweeps start many probe agents at once.
__version__ = "0.1.0"

__all__ = ["__version__"]
