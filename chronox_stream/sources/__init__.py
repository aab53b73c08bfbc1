"""Adapters that read market data from the outside world (REST, flat files, WebSocket)."""
