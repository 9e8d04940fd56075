"""tickpath: where should my server live, how do I get the market data there correctly, and what
does my message bus cost me. See the README for the tour; each capability is a subpackage with a
library API, and ``tickpath.cli`` is a thin shell over them."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("tickpath")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
