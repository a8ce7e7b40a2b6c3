"""Signing Hyperliquid L1 actions (orders, cancels): EIP-712 over a "phantom agent".

* ``connectionId`` = Keccak-256 of ``msgpack(action)`` + the nonce (8 bytes, big endian)
  + ``00`` (no vault) or ``01`` + the vault address (20 bytes) [+ ``00`` + expiresAfter
  (8 bytes) when given];
* the message ``Agent(string source, bytes32 connectionId)``, ``source`` ``"a"`` on
  mainnet and ``"b"`` on testnet;
* the domain ``EIP712Domain(string name, string version, uint256 chainId, address
  verifyingContract)`` = ``("Exchange", "1", 1337, 0x0)``;
* digest ``keccak256(0x19 01 ‖ domainSeparator ‖ hashStruct(message))``, signed with
  secp256k1 (``coincurve``) as ``{"r", "s", "v"}``.

Why not ccxt's own: ccxt computes the nine Keccak-256 hashes of a signature in pure
Python (~10 ms per order on a busy machine, on the event loop); this module does the
same with a C Keccak (``pycryptodomex``), a fraction of a millisecond. The result is the
same signature, byte for byte: ``tests/live/brokers/test_hyperliquid_adapter.py`` checks
it against ccxt's implementation. The fake venue recovers the signer with
:func:`l1_digest` (:mod:`rustybt.testing.venues.hyperliquid.signing`).
"""

from __future__ import annotations

from typing import Any

from rustybt.live.brokers.ccxt.hyperliquid.wallet import keccak256

_DOMAIN_TYPE = b"EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"
_AGENT_TYPE = b"Agent(string source,bytes32 connectionId)"
CHAIN_ID = 1337
_DOMAIN_SEPARATOR: bytes | None = None


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
    global _DOMAIN_SEPARATOR
    if _DOMAIN_SEPARATOR is None:
        _DOMAIN_SEPARATOR = keccak256(
            keccak256(_DOMAIN_TYPE)
            + keccak256(b"Exchange")
            + keccak256(b"1")
            + CHAIN_ID.to_bytes(32, "big")
            + bytes(32)  # verifyingContract 0x000...0, left-padded to 32 bytes
        )
    return _DOMAIN_SEPARATOR


def l1_digest(connection_id: bytes, testnet: bool) -> bytes:
    source = b"b" if testnet else b"a"
    struct = keccak256(keccak256(_AGENT_TYPE) + keccak256(source) + connection_id)
    return keccak256(b"\x19\x01" + _domain_separator() + struct)


def sign_l1(
    private_key: str,
    action: dict[str, Any],
    nonce: int,
    *,
    testnet: bool,
    vault: str | None = None,
    expires_after: int | None = None,
) -> dict[str, Any]:
    """``{"r": 0x.., "s": 0x.., "v": 27|28}`` for an L1 action."""
    from coincurve import PrivateKey

    digest = l1_digest(action_hash(action, nonce, vault, expires_after), testnet)
    sig = PrivateKey(bytes.fromhex(private_key.removeprefix("0x"))).sign_recoverable(
        digest, hasher=None
    )
    return {"r": "0x" + sig[:32].hex(), "s": "0x" + sig[32:64].hex(), "v": 27 + sig[64]}
