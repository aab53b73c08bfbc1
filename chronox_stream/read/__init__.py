"""The read path: bars back out of PostgreSQL for people, scripts and the live page.

``query`` validates a request and reads the bars (raw, or split-adjusted through the
``bars_adjusted`` view), ``formats`` renders them (table, CSV, JSON, Parquet) for
``chronox bars``; ``server`` is ``chronox serve``: the HTTP API (``openapi.json``), the
live page (``static/``) and its server-sent events (``live``), and the pipeline status
(``status``).
"""
