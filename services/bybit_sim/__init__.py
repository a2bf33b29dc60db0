"""Simulated Bybit V5 venue: REST + WebSocket on loopback, for tests, benchmarks and the demo."""
