"""NATS NKey authentication: seeds, public keys, nonce signatures, ``.creds`` files.

An NKey is an Ed25519 key written in base32 with a one-byte role prefix and a CRC16 (XMODEM)
trailer: seeds start with ``SU`` (user), public user keys with ``U``. The server sends a nonce
in INFO; the client signs it and sends ``nkey`` (plain NKey users) or ``jwt`` (``.creds`` files,
operator mode) with ``sig`` in CONNECT. Implemented on ``cryptography`` so no extra dependency.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from tickpath.errors import ConfigError

PREFIX_SEED = 18 << 3
PREFIX_USER = 20 << 3
_CREDS_BLOCK = re.compile(r"-{3,}[^\n]*-{3,}\r?\n(.+?)\r?\n\s*-{3,}[^\n]*-{3,}", re.DOTALL)


def crc16(data: bytes) -> int:
    """CRC16/XMODEM, the checksum NKeys carry."""
    crc = 0
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else crc << 1
            crc &= 0xFFFF
    return crc


def _b32(raw: bytes) -> str:
    full = raw + crc16(raw).to_bytes(2, "little")
    return base64.b32encode(full).decode().rstrip("=")


def _unb32(text: str) -> bytes:
    t = text.strip()
    try:
        full = base64.b32decode(t + "=" * (-len(t) % 8))
    except (binascii.Error, ValueError) as exc:
        raise ConfigError("not an NKey: invalid base32") from exc
    raw, crc = full[:-2], int.from_bytes(full[-2:], "little")
    if crc16(raw) != crc:
        raise ConfigError("not an NKey: checksum mismatch")
    return raw


@dataclass(frozen=True)
class UserKey:
    """A user NKey pair that can sign server nonces."""

    private: Ed25519PrivateKey

    @classmethod
    def generate(cls) -> UserKey:
        return cls(Ed25519PrivateKey.generate())

    @classmethod
    def from_seed(cls, seed: str) -> UserKey:
        raw = _unb32(seed)
        if len(raw) != 34:
            raise ConfigError("not an NKey seed: wrong length")
        prefix = ((raw[0] & 7) << 5) | ((raw[1] & 0xF8) >> 3)
        if raw[0] & 0xF8 != PREFIX_SEED or prefix != PREFIX_USER:
            raise ConfigError("only user NKey seeds (SU...) can authenticate a client")
        return cls(Ed25519PrivateKey.from_private_bytes(raw[2:]))

    @property
    def seed(self) -> str:
        raw = self.private.private_bytes(
            serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
        )
        return _b32(bytes([PREFIX_SEED | (PREFIX_USER >> 5), (PREFIX_USER & 31) << 3]) + raw)

    @property
    def public(self) -> str:
        raw = self.private.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        return _b32(bytes([PREFIX_USER]) + raw)

    def sign_nonce(self, nonce: str) -> str:
        """Base64url (unpadded) Ed25519 signature of the server's nonce, as CONNECT wants it."""
        return base64.urlsafe_b64encode(self.private.sign(nonce.encode())).decode().rstrip("=")

    def __repr__(self) -> str:  # never print the seed
        return f"UserKey(public={self.public})"


def read_creds(path: str | Path) -> tuple[str, UserKey]:
    """(JWT, key) from a ``.creds`` file: a JWT block, then an NKey seed block."""
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise ConfigError(f"cannot read credentials file {path}: {exc}") from exc
    blocks = [b.strip() for b in _CREDS_BLOCK.findall(text)]
    if len(blocks) < 2:
        raise ConfigError(f"{path} is not a NATS .creds file (needs a JWT block and a seed block)")
    return blocks[0], UserKey.from_seed(blocks[1])


def read_seed(path: str | Path) -> UserKey:
    """A user NKey from a file holding its seed (``SU...``)."""
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise ConfigError(f"cannot read NKey seed file {path}: {exc}") from exc
    seeds = [w for w in text.split() if w.startswith("SU")]
    if not seeds:
        raise ConfigError(f"no user NKey seed (SU...) in {path}")
    return UserKey.from_seed(seeds[0])
