"""The native core is built here; everything else about the package is in pyproject.toml.

``TICKPATH_SANITIZE=1`` builds the extension with AddressSanitizer and UBSan (the sanitizer test
target, ``make sanitize``); the default is an optimized build.
"""

import os

from pybind11.setup_helpers import Pybind11Extension
from setuptools import setup

_flags = ["-O3", "-g0"]
_link: list[str] = []
if os.environ.get("TICKPATH_SANITIZE") == "1":
    _flags = ["-O1", "-g", "-fno-omit-frame-pointer", "-fsanitize=address,undefined", "-fno-sanitize-recover=all"]
    _link = ["-fsanitize=address,undefined"]

setup(
    ext_modules=[
        Pybind11Extension(
            "tickpath.venues.binance._core",
            ["src/tickpath/venues/binance/native/module.cpp"],
            cxx_std=17,
            extra_compile_args=_flags,
            extra_link_args=_link,
            depends=[
                "src/tickpath/native/book.hpp",
                "src/tickpath/native/decimal.hpp",
                "src/tickpath/native/json.hpp",
                "src/tickpath/native/swar.hpp",
                "src/tickpath/venues/binance/native/batch.hpp",
                "src/tickpath/venues/binance/native/columns.hpp",
                "src/tickpath/venues/binance/native/core.hpp",
                "src/tickpath/venues/binance/native/events.hpp",
                "src/tickpath/venues/binance/native/fast.hpp",
                "src/tickpath/venues/binance/native/frame.hpp",
                "src/tickpath/venues/binance/native/frames.hpp",
                "src/tickpath/venues/binance/native/sync.hpp",
            ],
        ),
        # ingest's decoder of bus payloads into Arrow column buffers (tickpath.ingest.native).
        Pybind11Extension(
            "tickpath.ingest._decode",
            ["src/tickpath/ingest/native/module.cpp"],
            cxx_std=17,
            extra_compile_args=_flags,
            extra_link_args=_link,
            depends=["src/tickpath/ingest/native/decode.hpp"],
        ),
    ]
)
