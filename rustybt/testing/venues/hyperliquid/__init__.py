"""Loopback fake of Hyperliquid (see each module)."""
