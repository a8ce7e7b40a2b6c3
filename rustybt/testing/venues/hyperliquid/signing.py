"""Who signed a Hyperliquid action: the fake venue's check.

An L1 action (``order``, ``cancel``, ``cancelByCloid``, ``setReferrer``...) is signed as
EIP-712 typed data over a "phantom agent" (connectionId = Keccak-256 of the msgpack'd
action, nonce and vault flag; source ``"a"`` mainnet / ``"b"`` testnet; domain
``Exchange`` / ``1`` / 1337 / 0x0). The digest is
:func:`~rustybt.live.brokers.ccxt.hyperliquid.signing.l1_digest`, shared with the
adapter's signer, which a test checks byte for byte against ccxt's independent
implementation. The signer is the address of the public key recovered from
``(r, s, v)``: a wrong network, action, nonce or vault recovers a different address, so
the venue answers that this "User or API Wallet does not exist".
"""

from __future__ import annotations

from typing import Any

from rustybt.live.brokers.ccxt.hyperliquid.signing import action_hash, l1_digest, sign_l1
from rustybt.live.brokers.ccxt.hyperliquid.wallet import address_of_public_key

__all__ = ["BadSignature", "l1_signer", "recover", "sign_l1"]


class BadSignature(ValueError):
    """The signature is malformed (not that it is someone else's)."""


def recover(digest: bytes, signature: dict[str, Any]) -> str:
    """The address that signed ``digest`` (``signature`` = ``{"r", "s", "v"}``)."""
    from coincurve import PublicKey

    try:
        r = int(str(signature["r"]), 16)
        s = int(str(signature["s"]), 16)
        v = int(signature["v"])
    except (KeyError, TypeError, ValueError):
        raise BadSignature("signature must be {r: 0x.., s: 0x.., v: 27|28}") from None
    if v not in (27, 28) or not (0 < r < 2**256 and 0 < s < 2**256):
        raise BadSignature("signature v must be 27 or 28 and r, s 32-byte values")
    sig = r.to_bytes(32, "big") + s.to_bytes(32, "big") + bytes([v - 27])
    try:
        key = PublicKey.from_signature_and_message(sig, digest, hasher=None)
    except Exception:  # coincurve: not a point on the curve
        raise BadSignature("signature does not recover to a public key") from None
    return address_of_public_key(key.format(compressed=False))


def l1_signer(
    action: dict[str, Any],
    nonce: int,
    signature: dict[str, Any],
    *,
    vault: str | None,
    testnet: bool,
    expires_after: int | None = None,
) -> str:
    """The address that signed an L1 action."""
    return recover(l1_digest(action_hash(action, nonce, vault, expires_after), testnet), signature)
