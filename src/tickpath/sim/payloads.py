"""Wire payloads of the simulated streams and REST answers, field for field as Binance sends them.

Field order follows the real captures in ``../shared/data/binance`` (orjson keeps dict order):

* spot depth: ``e E s U u b a``; futures depth: ``e E T s U u pu b a``
* spot bookTicker: ``u s b B a A`` (no event type, no times); futures: ``e u s b B a A T E``
* spot aggTrade: ``e E s a p q f l T m M``; futures: ``e E a s p q f l T m``
* spot trade: ``e E s t p q T m M``; futures trade: ``e E T s t p q X m``
* COIN-M: the futures shapes, with ``ps`` (pair) after ``s`` in depth and bookTicker, quantities in
  contracts; its depth snapshot adds ``symbol`` and ``pair``. Binance.US and TR: spot's shapes.
"""

from __future__ import annotations

from typing import Any

import orjson

from tickpath.venues.binance.endpoints import VENUES, Venue, endpoints

Level = list[str]


def depth_update_one(symbol: str, e_ms: int, uid: int, price: str, qty: str, bid: bool) -> bytes:
    """A futures ``@depth@0ms`` event of one level, formatted directly (the hot path; no dict).

    Equal byte for byte to :func:`depth_update` with the same values (a test pins that down);
    prices, quantities and symbols never need JSON escaping.
    """
    lvl = b'[["%s","%s"]]' % (price.encode(), qty.encode())
    b, a = (lvl, b"[]") if bid else (b"[]", lvl)
    return b'{"e":"depthUpdate","E":%d,"T":%d,"s":"%s","U":%d,"u":%d,"pu":%d,"b":%s,"a":%s}' % (
        e_ms,
        e_ms,
        symbol.encode(),
        uid,
        uid,
        uid - 1,
        b,
        a,
    )


# Venues that send the futures shapes (pu, T, E on tickers), looked up per frame on the hot path.
_FUTURES_SHAPE: dict[str, bool] = {v: endpoints(v).rules == "futures" for v in VENUES}


def _pair(symbol: str) -> str:
    """COIN-M's ``ps``: the pair of a contract (``BTCUSD_PERP`` -> ``BTCUSD``)."""
    return symbol.split("_", 1)[0]


def depth_update(
    venue: Venue,
    symbol: str,
    e_ms: int,
    t_ms: int,
    first: int,
    last: int,
    prev: int,
    bids: list[Level],
    asks: list[Level],
) -> bytes:
    if venue == "coinm":
        return orjson.dumps(
            {
                "e": "depthUpdate",
                "E": e_ms,
                "T": t_ms,
                "s": symbol,
                "ps": _pair(symbol),
                "U": first,
                "u": last,
                "pu": prev,
                "b": bids,
                "a": asks,
            }
        )
    if _FUTURES_SHAPE[venue]:
        return orjson.dumps(
            {
                "e": "depthUpdate",
                "E": e_ms,
                "T": t_ms,
                "s": symbol,
                "U": first,
                "u": last,
                "pu": prev,
                "b": bids,
                "a": asks,
            }
        )
    return orjson.dumps({"e": "depthUpdate", "E": e_ms, "s": symbol, "U": first, "u": last, "b": bids, "a": asks})


def book_ticker(
    venue: Venue, symbol: str, uid: int, bid: str, bid_qty: str, ask: str, ask_qty: str, e_ms: int, t_ms: int
) -> bytes:
    if _FUTURES_SHAPE[venue]:
        head: dict[str, Any] = {"e": "bookTicker", "u": uid, "s": symbol}
        if venue == "coinm":
            head["ps"] = _pair(symbol)
        return orjson.dumps({**head, "b": bid, "B": bid_qty, "a": ask, "A": ask_qty, "T": t_ms, "E": e_ms})
    return orjson.dumps({"u": uid, "s": symbol, "b": bid, "B": bid_qty, "a": ask, "A": ask_qty})


def agg_trade(
    venue: Venue,
    symbol: str,
    agg_id: int,
    price: str,
    qty: str,
    trade_id: int,
    e_ms: int,
    t_ms: int,
    buyer_is_maker: bool,
) -> bytes:
    if _FUTURES_SHAPE[venue]:  # COIN-M: the same keys, q in contracts
        return orjson.dumps(
            {
                "e": "aggTrade",
                "E": e_ms,
                "a": agg_id,
                "s": symbol,
                "p": price,
                "q": qty,
                "f": trade_id,
                "l": trade_id,
                "T": t_ms,
                "m": buyer_is_maker,
            }
        )
    return orjson.dumps(
        {
            "e": "aggTrade",
            "E": e_ms,
            "s": symbol,
            "a": agg_id,
            "p": price,
            "q": qty,
            "f": trade_id,
            "l": trade_id,
            "T": t_ms,
            "m": buyer_is_maker,
            "M": True,
        }
    )


def trade(
    venue: Venue, symbol: str, trade_id: int, price: str, qty: str, e_ms: int, t_ms: int, buyer_is_maker: bool
) -> bytes:
    if _FUTURES_SHAPE[venue]:
        return orjson.dumps(
            {
                "e": "trade",
                "E": e_ms,
                "T": t_ms,
                "s": symbol,
                "t": trade_id,
                "p": price,
                "q": qty,
                "X": "MARKET",
                "m": buyer_is_maker,
            }
        )
    return orjson.dumps(
        {
            "e": "trade",
            "E": e_ms,
            "s": symbol,
            "t": trade_id,
            "p": price,
            "q": qty,
            "T": t_ms,
            "m": buyer_is_maker,
            "M": True,
        }
    )


def depth_snapshot(
    venue: Venue,
    last_update_id: int,
    bids: list[tuple[str, str]],
    asks: list[tuple[str, str]],
    e_ms: int = 0,
    t_ms: int = 0,
    symbol: str = "",
) -> bytes:
    if venue == "coinm":  # COIN-M's answer also names the contract and its pair
        return orjson.dumps(
            {
                "lastUpdateId": last_update_id,
                "symbol": symbol,
                "pair": _pair(symbol),
                "E": e_ms,
                "T": t_ms,
                "bids": bids,
                "asks": asks,
            }
        )
    if _FUTURES_SHAPE[venue]:
        return orjson.dumps({"lastUpdateId": last_update_id, "E": e_ms, "T": t_ms, "bids": bids, "asks": asks})
    return orjson.dumps({"lastUpdateId": last_update_id, "bids": bids, "asks": asks})


def exchange_info(venue: Venue, server_ms: int, symbols: list[dict[str, Any]], weight_budget: int) -> bytes:
    limits = [{"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": weight_budget}]
    return orjson.dumps(
        {"timezone": "UTC", "serverTime": server_ms, "rateLimits": limits, "exchangeFilters": [], "symbols": symbols}
    )


def _coinm_symbol_info(symbol: str, base: str, price_precision: int, qty_precision: int) -> dict[str, Any]:
    """A COIN-M contract: ``contractStatus`` (not ``status``), a contract size in USD, the coin as
    margin; dated contracts are quarterly (``CURRENT_QUARTER``)."""
    perpetual = symbol.endswith("_PERP")
    return {
        "symbol": symbol,
        "pair": _pair(symbol),
        "contractType": "PERPETUAL" if perpetual else "CURRENT_QUARTER",
        "contractStatus": "TRADING",
        "status": "TRADING",  # not in dapi's answer; kept so one reader serves every venue
        "contractSize": 100 if base == "BTC" else 10,
        "baseAsset": base,
        "quoteAsset": "USD",
        "marginAsset": base,
        "pricePrecision": price_precision,
        "quantityPrecision": qty_precision,
    }


def symbol_info(
    venue: Venue, symbol: str, base: str, quote: str, tick: str, step: str, price_precision: int, qty_precision: int
) -> dict[str, Any]:
    filters = [
        {"filterType": "PRICE_FILTER", "minPrice": tick, "maxPrice": "1000000", "tickSize": tick},
        {"filterType": "LOT_SIZE", "minQty": step, "maxQty": "100000", "stepSize": step},
    ]
    if venue == "coinm":
        return {**_coinm_symbol_info(symbol, base, price_precision, qty_precision), "filters": filters}
    if venue == "futures":
        return {
            "symbol": symbol,
            "pair": symbol,
            "contractType": "PERPETUAL",
            "status": "TRADING",
            "baseAsset": base,
            "quoteAsset": quote,
            "marginAsset": quote,
            "pricePrecision": price_precision,
            "quantityPrecision": qty_precision,
            "filters": filters,
        }
    return {
        "symbol": symbol,
        "status": "TRADING",
        "baseAsset": base,
        "baseAssetPrecision": 8,
        "quoteAsset": quote,
        "quotePrecision": 8,
        "quoteAssetPrecision": 8,
        "filters": filters,
        "isSpotTradingAllowed": True,
    }


def ws_frame_header(length: int, opcode: int = 0x1) -> bytes:
    """RFC 6455 header of an unmasked final server frame (text by default) of ``length`` bytes."""
    first = 0x80 | opcode
    if length < 126:
        return bytes((first, length))
    if length < 65536:
        return bytes((first, 126)) + length.to_bytes(2, "big")
    return bytes((first, 127)) + length.to_bytes(8, "big")


_SHORT_TEXT_HEADERS = [bytes((0x81, n)) for n in range(126)]


def ws_frame(payload: bytes, opcode: int = 0x1) -> bytes:
    """A complete unmasked server frame carrying ``payload``."""
    n = len(payload)
    if opcode == 0x1 and n < 126:
        return _SHORT_TEXT_HEADERS[n] + payload
    if opcode == 0x1 and n < 65536:
        return b"\x81\x7e" + n.to_bytes(2, "big") + payload
    return ws_frame_header(n, opcode) + payload


def envelope(stream: bytes, data: bytes) -> bytes:
    """The combined-stream envelope ``{"stream":...,"data":...}`` around a pre-serialised payload."""
    return b'{"stream":"' + stream + b'","data":' + data + b"}"
