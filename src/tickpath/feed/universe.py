"""Which symbols a feed takes: ``--symbols`` as explicit names, ``all``, or filters on exchangeInfo.

Grammar (terms separated by commas, case-insensitive)::

    SPEC   := TERM ("," TERM)*
    TERM   := "all"                      every symbol the venue lists as TRADING
            | KEY "=" VALUE ("|" VALUE)* symbols whose KEY is one of the values (TRADING only)
            | "-" SYMBOL                 never this symbol
            | SYMBOL                     this symbol (must be listed; kept even when not TRADING)
    KEY    := "quote" | "base" | "contract"

Filters on the same key are alternatives (``quote=USDT|USDC`` = ``quote=USDT,quote=USDC``);
filters on different keys must all hold (``quote=USDT,base=BTC|ETH``). Explicit symbols are added
to what the filters select. A spec with ``all`` or a filter is *dynamic*: the feed follows listings
and delistings while it runs (:mod:`tickpath.feed.listings`); a list of names is fixed.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from tickpath.errors import ConfigError, UnknownSymbolError
from tickpath.venues.binance.rest import TRADING, SymbolInfo

FILTER_KEYS = ("quote", "base", "contract")
_NAME_RE = re.compile(r"^[A-Z0-9_]{2,30}$")
GRAMMAR_HELP = (
    "comma-separated symbols (BTCUSDT,ETHUSDT), 'all' (every TRADING symbol of the venue), or filters on "
    "exchangeInfo: quote=USDT, base=BTC|ETH, contract=PERPETUAL (same key: any value; different keys: all "
    "must hold), combined with names (quote=FDUSD,BTCUSDT) and exclusions (-BTCUSDT). 'all' and filters "
    "follow listings and delistings while running"
)


@dataclass(frozen=True)
class Selection:
    """A parsed ``--symbols`` spec (see the module docstring)."""

    explicit: tuple[str, ...] = ()
    filters: tuple[tuple[str, frozenset[str]], ...] = ()  # (key, allowed values), ANDed over keys
    excluded: frozenset[str] = frozenset()
    every: bool = False  # "all" was given

    @property
    def dynamic(self) -> bool:
        """True when the set depends on exchangeInfo (and is followed while running)."""
        return self.every or bool(self.filters)

    def matches(self, info: SymbolInfo) -> bool:
        """Whether a listed symbol is chosen by ``all``/the filters (status aside)."""
        if not self.dynamic or info.symbol in self.excluded:
            return False
        fields = {"quote": info.quote, "base": info.base, "contract": info.contract_type}
        return all(fields[key].upper() in allowed for key, allowed in self.filters)

    def select(self, listing: Mapping[str, SymbolInfo], *, strict: bool = True) -> list[str]:
        """The chosen symbols: explicit ones first (as given), then TRADING matches in name order.

        ``strict``: an explicit name the venue does not list is an :class:`UnknownSymbolError`
        naming the nearest listed symbols (otherwise it is left out: a delisting while running)."""
        missing = [s for s in self.explicit if s not in listing]
        if missing and strict:
            raise unknown_symbols_error(missing, listing)
        out = [s for s in self.explicit if s not in self.excluded and s in listing]
        seen = set(out)
        for sym in sorted(listing):
            info = listing[sym]
            if sym not in seen and info.status == TRADING and self.matches(info):
                out.append(sym)
        return out


def parse_selection(text: str) -> Selection:
    """Parse a ``--symbols`` spec; a bad term is a :class:`ConfigError` saying what is accepted."""
    explicit: list[str] = []
    excluded: set[str] = set()
    filters: dict[str, set[str]] = {}
    every = False
    for raw in text.split(","):
        term = raw.strip()
        if not term:
            continue
        if term.lower() == "all":
            every = True
        elif "=" in term:
            key, _, values = term.partition("=")
            key = key.strip().lower()
            if key not in FILTER_KEYS:
                raise ConfigError(f"unknown symbol filter {key!r} in {term!r}: use {', '.join(FILTER_KEYS)}")
            vals = {v.strip().upper() for v in values.split("|") if v.strip()}
            if not vals:
                raise ConfigError(f"symbol filter {term!r} has no value, e.g. quote=USDT")
            filters.setdefault(key, set()).update(vals)
        elif term.startswith("-"):
            excluded.add(_name(term[1:]))
        else:
            name = _name(term)
            if name in explicit:
                raise ConfigError(f"a symbol is listed twice in --symbols {text!r}: {name}")
            explicit.append(name)
    if not (explicit or filters or every):
        raise ConfigError("no symbols given: pass --symbols BTCUSDT,ETHUSDT, --symbols all or --symbols quote=USDT")
    return Selection(
        explicit=tuple(explicit),
        filters=tuple((k, frozenset(v)) for k, v in sorted(filters.items())),
        excluded=frozenset(excluded),
        every=every,
    )


def _name(term: str) -> str:
    name = term.strip().upper()
    if not _NAME_RE.match(name):
        raise UnknownSymbolError(
            f"invalid symbol {term.strip()!r}: symbols are letters and digits, e.g. BTCUSDT "
            "(or use all, quote=, base=, contract= filters)"
        )
    return name


def nearest(symbol: str, listed: Iterable[str], n: int = 3) -> list[str]:
    """The listed symbols closest to ``symbol`` by spelling (difflib), best first."""
    return difflib.get_close_matches(symbol.upper(), list(listed), n=n, cutoff=0.6)


def unknown_symbols_error(missing: list[str], listed: Iterable[str], where: str = "") -> UnknownSymbolError:
    """One line: which symbols are not listed and, for each, the nearest listed ones."""
    names = list(listed)
    parts = []
    for sym in missing:
        close = nearest(sym, names)
        parts.append(f"{sym} (did you mean {' or '.join(close)}?)" if close else sym)
    verb = "is" if len(missing) == 1 else "are"
    return UnknownSymbolError(f"{', '.join(parts)} {verb} not listed{where}")
