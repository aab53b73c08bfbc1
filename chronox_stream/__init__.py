"""chronox-stream: Kafka-native ingestion of OHLCV bars into deduplicated, versioned envelopes."""

__version__ = "0.1.0"
