"""Shared test harness for ave-tf's layers (importable by tests only; needs pytest)."""
