"""Optional TLS: wss:// and https:// served with a generated self-signed certificate that clients can trust."""

from __future__ import annotations

import ssl

import aiohttp
import pytest

from tickpath.sim import Simulator

from .helpers import recv_json, small_config, ws_connect


async def test_wss_and_https_with_generated_certificate() -> None:
    """With tls=True the endpoints are wss/https, verified against the generated CA file."""
    async with Simulator(small_config(venues=("futures",), tls=True)) as sim:
        ep = sim.endpoint("futures")
        assert ep.ws_url.startswith("wss://") and ep.rest_url.startswith("https://") and ep.cafile
        ctx = ssl.create_default_context(cafile=ep.cafile)
        ws = await ws_connect(ep.raw_url("btcusdt@bookTicker"), ssl=ctx)
        try:
            assert (await recv_json(ws))["e"] == "bookTicker"
        finally:
            await ws.close()
        async with aiohttp.ClientSession() as http:
            async with http.get(ep.rest_url + "/fapi/v1/time", ssl=ctx) as r:
                assert r.status == 200
            with pytest.raises(aiohttp.ClientConnectorCertificateError):
                async with http.get(ep.rest_url + "/fapi/v1/time") as r:  # system trust store: refused
                    pass
