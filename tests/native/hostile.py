"""Frames built to break a decoder: shared by the sanitizer run and the fuzz targets' seed corpus."""

from __future__ import annotations

HEAD = b'{"stream":"btcusdt@depth@100ms","data":{"e":"depthUpdate","E":1,"T":1,"s":"BTCUSDT","U":1,"u":2,"pu":0,'


def hostile_frames() -> list[bytes]:
    big_levels = b",".join([b'["1.5","2"]'] * 60_000)  # ~700 kB of levels
    return [
        b"",
        b"{",
        b'{"stream":"',
        b'{"stream":"btcusdt@depth',
        HEAD,
        HEAD + b'"b":[["1","2"]',
        HEAD + b'"b":[' + big_levels + b'],"a":[]}}',
        b'{"stream":"x@depth","data":' + b"[" * 100_000 + b"]" * 100_000 + b"}",
        b'{"zz":' + b"[" * 5000 + b"}",
        HEAD + b'"b":[["' + b"9" * 1_000_000 + b'","1"]],"a":[]}}',
        HEAD + b'"b":[],"a":[],"E":' + b"9" * 400 + b"}}",
        HEAD + b'"b":[],"a":[],"s":"\xff\xfe"}}',
        HEAD + b'"b":[],"a":[],"s":"\\ud800\\udc00\\u0000\\n"}}',
        HEAD + b'"b":[],"a":[],"s":"\\ud800"}}',
        HEAD + b'"b":[],"a":[],"s":"\\u12"}}',
        HEAD + b'"b":[["\\u0031","\\u0032"]],"a":[]}}',
        HEAD + b'"b":[["1","2","3"]],"a":[[]]}}',
        HEAD + b'"b":[["1",2]],"a":[["1"]]}}',
        HEAD + b'"b":[],"a":[],"pu":-9223372036854775808}}',
        HEAD + b'"b":[],"a":[],"pu":18446744073709551616}}',
        b'{"stream":"x@aggTrade","data":{"e":"aggTrade","E":1,"s":"' + b"A" * 100_000 + b'","a":1,"p":"1","q":"1",'
        b'"f":1,"l":1,"T":1,"m":true}}',
        b'{"e":"depthUpdate","E":1,"s":"X","U":1,"u":2,"b":[],"a":[]}',
        b'{"result":null,"id":1.5}',
        b'{"result":null,"id":123456789012345678901234567890}',
        b'{"u":1,"s":"X","b":"1","B":"1","a":"1","A":"1"}  x',
        b'{"stream":"btcusdt@kline_1m","\x83data":{"e":"klioe","E":1,"s":"BTCUSDT","k":{"t":1}}}',
        b'{"stream":"!miniTicker@arr","data":[' + b"[" * 5000 + b"]" * 5000 + b"]}",
        b"\x00" * 64,
        bytes(range(256)),
    ]
