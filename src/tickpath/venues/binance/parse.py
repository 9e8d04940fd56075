"""Frames in, wire types out: the one place Binance's WebSocket and REST payloads are decoded.

:func:`decode_frame` accepts both the combined-stream envelope (``{"stream": ..., "data": ...}``,
used by ``/stream?streams=``) and a raw payload (``/ws/<stream>``). The envelope is decoded first with
``data`` left as raw bytes; the stream name then picks the typed decoder, so each frame is validated
in two C-level msgspec passes and never becomes a dict.

Bad input never escapes as a dependency error: malformed JSON, a frame that violates the schema,
and an event type this feed does not know each raise :class:`ParseError` with a ``reason`` the
engine counts by, and a short ``sample`` it may log (rate-limited). None of them is fatal.
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec

from tickpath.errors import ExchangeError
from tickpath.venues.binance.schemas import (
    AggTrade,
    BookTicker,
    ControlReply,
    DayTickerMsg,
    DepthSnapshot,
    DepthUpdate,
    Envelope,
    ForceOrderMsg,
    Kline,
    MarkPriceMsg,
    MiniTickerMsg,
    OpenInterestBody,
    RawTrade,
    WireMessage,
)

ParseReason = Literal["malformed_json", "schema", "unknown_event"]
SAMPLE_CHARS = 160


class ParseError(ExchangeError):
    """A frame or REST body that could not be decoded; ``reason`` says which way it was bad."""

    def __init__(self, message: str, *, reason: ParseReason, sample: str = "") -> None:
        super().__init__(message)
        self.reason: ParseReason = reason
        self.sample = sample


_envelope = msgspec.json.Decoder(Envelope)
_snapshot = msgspec.json.Decoder(DepthSnapshot)
_control = msgspec.json.Decoder(ControlReply)
# One decoder per stream kind; a kind absent here is an unknown event.
_DECODERS: dict[str, msgspec.json.Decoder[Any]] = {
    "depth": msgspec.json.Decoder(DepthUpdate),
    "aggTrade": msgspec.json.Decoder(AggTrade),
    "trade": msgspec.json.Decoder(RawTrade),
    "bookTicker": msgspec.json.Decoder(BookTicker),
    "kline": msgspec.json.Decoder(Kline),
    # the low-rate channels (channels.py); ``...Arr``: the all-market arrays, one frame a second
    "ticker": msgspec.json.Decoder(DayTickerMsg),
    "miniTicker": msgspec.json.Decoder(MiniTickerMsg),
    "markPrice": msgspec.json.Decoder(MarkPriceMsg),
    "forceOrder": msgspec.json.Decoder(ForceOrderMsg),
    "tickerArr": msgspec.json.Decoder(list[DayTickerMsg]),
    "miniTickerArr": msgspec.json.Decoder(list[MiniTickerMsg]),
    "markPriceArr": msgspec.json.Decoder(list[MarkPriceMsg]),
}
# A raw array frame (``/ws/!miniTicker@arr``): its items say what they are by ``e``.
_raw_array = msgspec.json.Decoder(list[DayTickerMsg | MiniTickerMsg | MarkPriceMsg])
_open_interest = msgspec.json.Decoder(OpenInterestBody)
# All-market stream names (after the ``!``) -> stream kind.
_ALL_MARKET = {
    "bookTicker": "bookTicker",
    "miniTicker@arr": "miniTickerArr",
    "ticker@arr": "tickerArr",
    "markPrice@arr": "markPriceArr",
    "markPrice@arr@1s": "markPriceArr",
    "forceOrder@arr": "forceOrder",
}
# The ``e`` of a raw payload -> stream kind.
_EVENT_KIND = {
    "depthUpdate": "depth",
    "aggTrade": "aggTrade",
    "trade": "trade",
    "bookTicker": "bookTicker",
    "kline": "kline",
    "24hrTicker": "ticker",
    "24hrMiniTicker": "miniTicker",
    "markPriceUpdate": "markPrice",
    "forceOrder": "forceOrder",
}
_kind_cache: dict[str, str] = {}
_KIND_CACHE_MAX = 16384  # stream names are few; the cap only guards against a hostile peer


def _data_of(kind_type: Any) -> msgspec.json.Decoder[Any]:
    """A decoder of ``{"stream": ..., "data": <kind_type>}`` that reads only ``data``: one pass."""
    name = getattr(kind_type, "__name__", "List")
    envelope = msgspec.defstruct(f"{name}Envelope", [("data", kind_type)], frozen=True)
    return msgspec.json.Decoder(envelope)


_ENVELOPED: dict[str, msgspec.json.Decoder[Any]] = {
    "depth": _data_of(DepthUpdate),
    "aggTrade": _data_of(AggTrade),
    "trade": _data_of(RawTrade),
    "bookTicker": _data_of(BookTicker),
    "kline": _data_of(Kline),
    "ticker": _data_of(DayTickerMsg),
    "miniTicker": _data_of(MiniTickerMsg),
    "markPrice": _data_of(MarkPriceMsg),
    "forceOrder": _data_of(ForceOrderMsg),
    "tickerArr": _data_of(list[DayTickerMsg]),
    "miniTickerArr": _data_of(list[MiniTickerMsg]),
    "markPriceArr": _data_of(list[MarkPriceMsg]),
}
# The low-rate channels' decoders: the native core hands their frames back only once it has read the
# whole frame as JSON, so a frame both malformed and off-schema is malformed here too, like there.
_CHANNEL_KINDS = ("kline", "ticker", "miniTicker", "markPrice", "forceOrder", "tickerArr", "miniTickerArr")
_WELLFORMED_FIRST = {
    *(_DECODERS[k] for k in (*_CHANNEL_KINDS, "markPriceArr")),
    *(_ENVELOPED[k] for k in (*_CHANNEL_KINDS, "markPriceArr")),
    _raw_array,
}


def _well_formed(raw: bytes | str) -> bool:
    try:
        msgspec.json.decode(raw)
    except (msgspec.DecodeError, UnicodeError, RecursionError):
        return False
    return True


# Stream name as it appears at the start of a frame (bytes or str) -> one-pass decoder (None: unknown).
_by_prefix: dict[bytes | str, msgspec.json.Decoder[Any] | None] = {}
_PREFIX_B = b'{"stream":"'
_PREFIX_S = '{"stream":"'
_PREFIX_LEN = len(_PREFIX_B)


def stream_kind(stream_name: str) -> str:
    """The kind of a stream name: ``btcusdt@depth@100ms`` -> ``depth``, ``x@kline_1m`` -> ``kline``.

    Kinds: ``depth``, ``trade``, ``aggTrade``, ``bookTicker``, ``kline``, ``ticker``, ``miniTicker``,
    ``markPrice``, ``forceOrder``, and for the all-market streams ``bookTicker`` (``!bookTicker``),
    ``forceOrder`` (``!forceOrder@arr``) and the arrays ``tickerArr``, ``miniTickerArr``,
    ``markPriceArr``; anything else is returned as spelled and is an unknown event to :func:`decode_frame`.
    """
    kind = _kind_cache.get(stream_name)
    if kind is None:
        if stream_name.startswith("!"):
            kind = _ALL_MARKET.get(stream_name[1:], stream_name[1:])
        else:
            _, _, rest = stream_name.partition("@")
            kind = rest.partition("@")[0]
            if kind.startswith("kline_"):
                kind = "kline"
        if len(_kind_cache) < _KIND_CACHE_MAX:
            _kind_cache[stream_name] = kind
    return kind


def sample_of(raw: bytes | str) -> str:
    """The start of a frame, printable, for a rate-limited log line."""
    text = raw if isinstance(raw, str) else raw[: SAMPLE_CHARS * 4].decode("utf-8", "replace")
    return text[:SAMPLE_CHARS]


def decode_frame(raw: bytes | str) -> WireMessage:
    """Decode one WebSocket text frame into its wire type; raises :class:`ParseError` on bad input.

    Fast path: a combined-stream frame starting ``{"stream":"<name>"`` (as Binance and the simulator
    send them) is decoded in one pass by a decoder picked from the stream name. Anything else takes
    the general path (envelope first, then the payload).
    """
    if raw.startswith(_PREFIX_B if type(raw) is bytes else _PREFIX_S):  # type: ignore[arg-type]
        name = raw[_PREFIX_LEN : raw.find(b'"' if type(raw) is bytes else '"', _PREFIX_LEN)]  # type: ignore[arg-type]
        try:
            dec = _by_prefix[name]
        except KeyError:
            text = name.decode("utf-8", "replace") if isinstance(name, bytes) else name
            dec = _ENVELOPED.get(stream_kind(text))
            if len(_by_prefix) < _KIND_CACHE_MAX:
                _by_prefix[name] = dec
        if dec is not None:
            try:  # _decode_with inlined: one Python call fewer per frame on the hot path
                return dec.decode(raw).data  # type: ignore[no-any-return]
            except (msgspec.DecodeError, UnicodeError, RecursionError):
                return _decode_with(dec, raw, raw)  # type: ignore[no-any-return]  # raises ParseError
    return _decode_general(raw)


def _decode_general(raw: bytes | str) -> WireMessage:
    if raw.lstrip()[:1] in (b"[", "["):  # a raw all-market array
        return _decode_with(_raw_array, raw, raw)  # type: ignore[no-any-return]
    try:
        env = _envelope.decode(raw)
    except (msgspec.DecodeError, UnicodeError, RecursionError) as exc:
        reason: ParseReason = "schema" if isinstance(exc, msgspec.ValidationError) else "malformed_json"
        raise ParseError(f"undecodable frame: {exc}", reason=reason, sample=sample_of(raw)) from None
    payload: bytes | str | msgspec.Raw
    if env.stream is not None and env.data:
        kind = stream_kind(env.stream)
        payload = env.data
    elif env.e is not None:
        kind = _EVENT_KIND.get(env.e, env.e)
        payload = raw
    elif env.id is not None:
        return _decode_with(_control, raw, raw)  # type: ignore[no-any-return]
    else:
        kind = "bookTicker"  # a raw spot bookTicker is the one payload without ``e``
        payload = raw
    decoder = _DECODERS.get(kind)
    if decoder is None:
        raise ParseError(f"unknown event kind {kind!r}", reason="unknown_event", sample=sample_of(raw))
    return _decode_with(decoder, payload, raw)  # type: ignore[no-any-return]


def _decode_with(decoder: msgspec.json.Decoder[Any], payload: Any, raw: bytes | str) -> Any:
    try:
        return decoder.decode(payload)
    except msgspec.ValidationError as exc:
        if decoder in _WELLFORMED_FIRST and not _well_formed(raw):
            raise ParseError("undecodable frame", reason="malformed_json", sample=sample_of(raw)) from None
        raise ParseError(f"frame violates the schema: {exc}", reason="schema", sample=sample_of(raw)) from None
    except (
        msgspec.DecodeError,
        UnicodeError,
        RecursionError,
    ) as exc:  # bad UTF-8, or a str frame with a lone surrogate
        raise ParseError(f"undecodable frame: {exc}", reason="malformed_json", sample=sample_of(raw)) from None


def decode_snapshot(body: bytes | str) -> DepthSnapshot:
    """Decode a REST depth snapshot body; raises :class:`ParseError` on bad input."""
    return _decode_with(_snapshot, body, body)  # type: ignore[no-any-return]


def decode_open_interest(body: bytes | str) -> OpenInterestBody:
    """Decode a REST open-interest body; raises :class:`ParseError` on bad input."""
    return _decode_with(_open_interest, body, body)  # type: ignore[no-any-return]
