"""``chronox sim``: a deterministic, seedable, Polygon.io-compatible market simulator.

One pure model (:mod:`.market` trades, :mod:`.aggregate` bars by Polygon's
condition rules, :mod:`.feed` the WebSocket timeline) behind every interface:
REST (:mod:`.rest`), WebSocket (:mod:`.ws`) and S3 flat files
(:mod:`.flatfiles`, :mod:`.s3`), with test knobs (:mod:`.knobs`, :mod:`.admin`).
See docs/simulator.md.
"""
