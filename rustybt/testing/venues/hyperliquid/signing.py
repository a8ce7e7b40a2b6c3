"""Who signed a Hyperliquid action: the fake venue's check, written from the venue's spec.

An L1 action (``order``, ``cancel``, ``cancelByCloid``, ``setReferrer``...) is signed as
EIP-712 typed data over a "phantom agent":

* ``connectionId`` = Keccak-256 of ``msgpack(action)`` + the nonce (8 bytes, big endian)
  + ``00`` (no vault) or ``01`` + the vault address (20 bytes) [+ ``00`` + expiresAfter
  (8 bytes) when given];
* the message ``Agent(string source, bytes32 connectionId)`` with ``source`` ``"a"`` on
  mainnet and ``"b"`` on testnet;
* the domain ``EIP712Domain(string name, string version, uint256 chainId, address
  verifyingContract)`` = ``("Exchange", "1", 1337, 0x0)``.

The digest is ``keccak256(0x19 01 ‖ domainSeparator ‖ hashStruct(message))``; the signer is
the address of the public key recovered from ``(r, s, v)``. A wrong network, action,
nonce or vault recovers a different address, so the venue answers that this "User or
API Wallet does not exist".
"""

from __future__ import annotations

from typing import Any

from rustybt.live.brokers.ccxt.hyperliquid.wallet import address_of_public_key, keccak256

_DOMAIN_TYPE = b"EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"
_AGENT_TYPE = b"Agent(string source,bytes32 connectionId)"
CHAIN_ID = 1337


class BadSignature(ValueError):
    """The signature is malformed (not that it is someone else's)."""


def action_hash(
    action: dict[str, Any], nonce: int, vault: str | None, expires_after: int | None = None
) -> bytes:
    from ccxt.static_dependencies.msgpack import packb

    data = packb(action) + int(nonce).to_bytes(8, "big")
    if vault is None:
        data += b"\x00"
    else:
        data += b"\x01" + bytes.fromhex(vault.removeprefix("0x"))
    if expires_after is not None:
        data += b"\x00" + int(expires_after).to_bytes(8, "big")
    return keccak256(data)


def _domain_separator() -> bytes:
    return keccak256(
        keccak256(_DOMAIN_TYPE)
        + keccak256(b"Exchange")
        + keccak256(b"1")
        + CHAIN_ID.to_bytes(32, "big")
        + bytes(32)  # verifyingContract 0x000...0, left-padded to 32 bytes
    )


def l1_digest(connection_id: bytes, testnet: bool) -> bytes:
    source = b"b" if testnet else b"a"
    struct = keccak256(keccak256(_AGENT_TYPE) + keccak256(source) + connection_id)
    return keccak256(b"\x19\x01" + _domain_separator() + struct)


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


def sign_l1(
    private_key: str,
    action: dict[str, Any],
    nonce: int,
    *,
    testnet: bool,
    vault: str | None = None,
) -> dict[str, Any]:
    """Sign an L1 action (for tests that speak to the fake without ccxt)."""
    from coincurve import PrivateKey

    digest = l1_digest(action_hash(action, nonce, vault), testnet)
    sig = PrivateKey(bytes.fromhex(private_key.removeprefix("0x"))).sign_recoverable(
        digest, hasher=None
    )
    return {"r": "0x" + sig[:32].hex(), "s": "0x" + sig[32:64].hex(), "v": 27 + sig[64]}
