"""The pure core: bars, windows, gaps, dedup and precedence, strategies, the tick fold. No I/O."""
