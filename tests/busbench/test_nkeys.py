"""NKey authentication: the encoding matches NATS's documented key pair, seeds round-trip,
.creds files parse, and a real nats-server accepts the signed nonce (and refuses other keys)."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from tickpath.busbench.nkeys import UserKey, crc16, read_creds, read_seed
from tickpath.busbench.wire import NatsConn
from tickpath.errors import ConfigError, HandshakeError
from tickpath.nats.url import Credentials
from tickpath.natsserver import NatsCluster

# The example pair from the NATS documentation (nk -gen user -pubout).
DOC_SEED = "SUACSSL3UAHUDXKFSNVUZRF5UHPMWZ6BFDTJ7M6USDXIEDNPPQYYYCU3VY"
DOC_PUBLIC = "UDXU4RCSJNZOIQHZNWXHXORDPRTGNJAHAHFRGZNEEJCPQTT2M7NLCNF4"


def test_documented_seed_gives_documented_public_key() -> None:
    """Decoding NATS's example seed yields its example public key, and re-encodes to the seed."""
    key = UserKey.from_seed(DOC_SEED)
    assert key.public == DOC_PUBLIC
    assert key.seed == DOC_SEED
    assert DOC_SEED not in repr(key)


def test_bad_seeds_are_config_errors() -> None:
    """A corrupted checksum, bad base32 or a non-user seed is refused with ConfigError."""
    with pytest.raises(ConfigError, match="checksum"):
        UserKey.from_seed(DOC_SEED[:-2] + "XX")
    with pytest.raises(ConfigError):
        UserKey.from_seed("SU0!")
    with pytest.raises(ConfigError):
        UserKey.from_seed(DOC_PUBLIC)  # a public key is not a seed
    assert crc16(b"123456789") == 0x31C3  # the XMODEM check value


def test_creds_file_and_signature(tmp_path: Path) -> None:
    """A .creds file yields its JWT and key; the signature verifies against the public key."""
    creds = tmp_path / "u.creds"
    creds.write_text(
        "-----BEGIN NATS USER JWT-----\neyJ0.eyJ1.sig\n------END NATS USER JWT------\n\n"
        "*** IMPORTANT ***\n-----BEGIN USER NKEY SEED-----\n" + DOC_SEED + "\n------END USER NKEY SEED------\n"
    )
    jwt, key = read_creds(creds)
    assert jwt == "eyJ0.eyJ1.sig" and key.public == DOC_PUBLIC
    sig = base64.urlsafe_b64decode(key.sign_nonce("abc") + "==")
    key.private.public_key().verify(sig, b"abc")  # raises when wrong
    with pytest.raises(ConfigError):
        read_creds(tmp_path / "missing.creds")


@pytest.mark.integration
async def test_real_server_accepts_nkey_and_refuses_others(nats_binary: str, tmp_path: Path) -> None:
    """nats-server with an NKey user accepts our signed nonce and refuses another key's."""
    good, other = UserKey.generate(), UserKey.generate()
    (tmp_path / "good.nk").write_text(good.seed + "\n")
    (tmp_path / "other.nk").write_text(other.seed + "\n")
    assert read_seed(tmp_path / "good.nk").public == good.public
    async with NatsCluster(1, nkeys=[good.public], binary=nats_binary) as c:
        conn = NatsConn(c.client_urls[0], credentials=Credentials(nkey_seed_file=str(tmp_path / "good.nk")))
        conn.connect()
        assert conn.rtt_ns(1)[0] > 0
        conn.close()
        with pytest.raises(HandshakeError):
            NatsConn(c.client_urls[0], credentials=Credentials(nkey_seed_file=str(tmp_path / "other.nk"))).connect()
