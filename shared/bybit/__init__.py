"""Bybit V5: pure protocol helpers (signatures, message parsing, endpoints)."""
