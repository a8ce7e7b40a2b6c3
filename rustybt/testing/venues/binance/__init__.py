"""Loopback fake of Binance (see each module)."""
