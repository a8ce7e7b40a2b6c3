"""Hyperliquid wallets: private-key checks, the address a key signs as, and Keccak-256.

Hyperliquid has no API key: every order is signed with a secp256k1 private key (the
account's own, or an API/"agent" wallet approved for it). The account address is the
last 20 bytes of the Keccak-256 of the key's uncompressed public key. ``coincurve`` (a
ccxt dependency) does the curve; Keccak is ``pycryptodomex``'s C one. The fake venue
uses :func:`address_of_public_key` to name the signer it recovers.

Nothing here ever puts a key in a message: errors describe the shape that was expected.
"""

from __future__ import annotations

import re

from rustybt.exceptions import ConfigError

_KEY = re.compile(r"^(0x)?[0-9a-fA-F]{64}$")
_ADDRESS = re.compile(r"^0x[0-9a-fA-F]{40}$")


def keccak256(data: bytes) -> bytes:
    """Keccak-256 (Ethereum's, not SHA3-256): C (``pycryptodomex``), else ccxt's Python."""
    if _fast_keccak is not None:
        return _fast_keccak.new(digest_bits=256, data=data).digest()
    from ccxt.static_dependencies import keccak

    return bytes(keccak.SHA3(data))


try:
    from Cryptodome.Hash import keccak as _fast_keccak
except ImportError:  # pragma: no cover - a dependency; ccxt's pure-Python one still works
    _fast_keccak = None


def normalize_private_key(private_key: str) -> str:
    """The key as ``0x`` + 64 lower-case hex digits; ``ConfigError`` (key not shown) if not one."""
    text = str(private_key).strip()
    if not _KEY.match(text):
        raise ConfigError(
            "the Hyperliquid private key is not a secp256k1 key: expected 64 hex digits, "
            f"optionally prefixed 0x (got {len(text)} characters; the value is not shown)"
        )
    return "0x" + text.lower().removeprefix("0x")


def normalize_address(address: str, what: str = "wallet_address") -> str:
    text = str(address).strip()
    if not _ADDRESS.match(text):
        raise ConfigError(
            f"{what}={text!r} is not an address: expected 0x followed by 40 hex digits"
        )
    return text.lower()


def address_of_public_key(public_key: bytes) -> str:
    """The address of an uncompressed (65-byte, ``04``-prefixed) secp256k1 public key."""
    return "0x" + keccak256(public_key[1:])[-20:].hex()


def address_of(private_key: str) -> str:
    """The address a private key signs as (lower-case ``0x`` + 40 hex)."""
    from coincurve import PrivateKey

    raw = bytes.fromhex(normalize_private_key(private_key)[2:])
    try:
        return address_of_public_key(PrivateKey(raw).public_key.format(compressed=False))
    except ValueError:
        raise ConfigError(
            "the Hyperliquid private key is outside the secp256k1 range; the value is not shown"
        ) from None
