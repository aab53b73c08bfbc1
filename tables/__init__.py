"""Faust tables and the small typed accessors around them.

Every table is changelog-backed (RocksDB in workers) and written only while
processing an event keyed by symbol, so a symbol's state always lives in the
partition that owns the symbol.
"""
