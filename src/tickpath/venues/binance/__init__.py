"""Everything Binance-specific: URLs, limits, stream names, wire schemas, sync rules, parsing,
and the capture format. Pure functions, bytes in, model out; no other package knows these facts."""
