"""Adapters that write envelopes out: PostgreSQL and Redis."""
