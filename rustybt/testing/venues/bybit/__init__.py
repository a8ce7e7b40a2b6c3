"""Loopback fake of Bybit (see each module)."""
