"""Test support: real servers and protocol peers used by fixtures."""
