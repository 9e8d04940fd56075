"""tickpath.nats.internals: every nats-py private attribute tickpath relies on is pinned, and one that
moved gives a clear ToolMissingError naming it (not an AttributeError in a hot path)."""

from __future__ import annotations

import asyncio
from typing import Any

import nats.aio.client as client_module
import nats.protocol.parser as parser_module
import pytest
from nats.aio.subscription import Subscription

from tickpath.errors import ToolMissingError
from tickpath.nats import internals
from tickpath.nats.internals import SUPPORTED, check_internals, verify
from tickpath.sinks.nats import NatsSink

# Each private attribute, and how a fresh nats-py 2.16 client (not connected) shows it.
CLIENT_ATTRS = ["_ps", "_process_msg", "_flush_pending", "_pending", "_pending_data_size", "stats", "options"]


def _fresh() -> tuple[Any, Any]:
    client = client_module.Client()
    return client, Subscription(client, id=7)


def test_the_pinned_nats_py_is_the_supported_one() -> None:
    """pyproject.toml pins the nats-py whose internals these are, and the installed one passes the check."""
    assert client_module.__version__.startswith(SUPPORTED + ".")
    check_internals()
    client, sub = _fresh()
    verify(client_module.__version__, parser_module, client, sub)


def test_each_attribute_has_the_shape_used() -> None:
    """The shapes the fast paths rely on, one by one, on a fresh client."""
    client, sub = _fresh()
    ps = client._ps
    assert type(ps) is parser_module.Parser and ps.nc is client
    assert isinstance(ps.buf, bytearray) and ps.state == parser_module.AWAITING_CONTROL_LINE
    assert asyncio.iscoroutinefunction(ps.parse)
    assert asyncio.iscoroutinefunction(client._process_msg) and asyncio.iscoroutinefunction(client._flush_pending)
    assert client._pending == [] and client._pending_data_size == 0 and client.stats["out_msgs"] == 0
    assert isinstance(client.options, dict)
    assert internals.subscription_id(sub) == 7


@pytest.mark.parametrize("attr", CLIENT_ATTRS)
def test_a_client_attribute_that_moved_is_named(attr: str) -> None:
    """A client without one of the attributes fails verify() with the attribute's name and the
    supported version, as ToolMissingError (exit 3), not AttributeError."""
    client, sub = _fresh()
    client.__dict__.pop(attr, None)
    if attr in ("_process_msg", "_flush_pending"):
        setattr(client, attr, None)  # a method: shadow it on the instance
    with pytest.raises(ToolMissingError, match=rf"nats-py 9\.9\.9 moved Client\.{attr}.*; tickpath supports 2\.16"):
        verify("9.9.9", parser_module, client, sub)


@pytest.mark.parametrize("attr", ["buf", "state", "nc"])
def test_a_parser_attribute_that_moved_is_named(attr: str) -> None:
    """The parser's buffer, state and client are checked too."""
    client, sub = _fresh()
    delattr(client._ps, attr)
    with pytest.raises(ToolMissingError, match=rf"moved Parser\.{attr};"):
        verify("9.9.9", parser_module, client, sub)


def test_a_subscription_without_its_sid_is_named() -> None:
    """Subscription._id (the sid in MSG frames) is checked."""
    client, sub = _fresh()
    del sub._id
    with pytest.raises(ToolMissingError, match=r"moved Subscription\._id;"):
        verify("9.9.9", parser_module, client, sub)


async def test_a_moved_module_attribute_fails_the_sink_before_any_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """With the parser module's state constant gone (a simulated upgrade), starting the sink raises
    ToolMissingError naming it, before any connection (the port here has no server)."""
    monkeypatch.delattr(parser_module, "AWAITING_CONTROL_LINE")
    monkeypatch.setattr(internals, "_checked", False)
    with pytest.raises(
        ToolMissingError, match=r"moved nats\.protocol\.parser\.AWAITING_CONTROL_LINE; tickpath supports"
    ):
        check_internals()
    sink = NatsSink.from_url("nats://127.0.0.1:1", connect_timeout_s=1)
    with pytest.raises(ToolMissingError, match="AWAITING_CONTROL_LINE"):
        await sink.start()
    await sink.close()
    assert internals._checked is False  # a failed check is not remembered as passed


async def test_a_client_attribute_gone_after_an_upgrade_fails_connect_clearly(monkeypatch: pytest.MonkeyPatch) -> None:
    """A nats-py whose Client no longer sets ``_pending`` (simulated by wrapping its constructor)
    makes the sink's start fail with ToolMissingError naming Client._pending, before any network."""
    original = client_module.Client.__init__

    def init_without_pending(self: Any) -> None:
        original(self)
        del self._pending

    monkeypatch.setattr(client_module.Client, "__init__", init_without_pending)
    monkeypatch.setattr(internals, "_checked", False)
    sink = NatsSink.from_url("nats://127.0.0.1:1", connect_timeout_s=1)
    with pytest.raises(ToolMissingError, match=r"nats-py 2\.16\.\d+ moved Client\._pending; tickpath supports 2\.16"):
        await sink.start()
    await sink.close()


def test_a_client_whose_parser_is_replaced_is_refused() -> None:
    """A parser that is not nats-py's own (another version's class) fails the Client._ps check."""
    client, sub = _fresh()

    class OtherParser:
        async def parse(self, data: bytes = b"") -> None: ...

    client._ps = OtherParser()
    with pytest.raises(ToolMissingError, match=r"moved Client\._ps;"):
        verify("9.9.9", parser_module, client, sub)
