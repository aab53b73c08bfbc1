"""Every query of the Grafana dashboard uses metrics a worker exposes: a rename fails here."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import faust
import pytest

from chronox_stream.runtime.metrics import worker_registry

DASHBOARD = Path(__file__).resolve().parents[2] / "deploy/grafana/dashboards/chronox.json"
#: Sample names a metric family of each type exposes (prometheus_client's text format).
SUFFIXES = {"counter": ("_total", "_created"), "histogram": ("_bucket", "_sum", "_count",
            "_created"), "summary": ("_sum", "_count", "_created"), "gauge": ("",)}  # fmt: skip
PROMQL_WORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "and", "or",
                "unless", "bool", "offset", "le", "inf", "nan"}  # fmt: skip
NAME = re.compile(r"(?<![\w:.])[a-zA-Z_:][\w:]*")  # not the unit of a number (1h)


def exposed() -> set[str]:
    """Every sample name a worker's /metrics can show, families without samples yet included."""
    registry = worker_registry(faust.App("dashboard-unit", autodiscover=False))
    return {family.name + suffix for family in registry.collect()
            for suffix in SUFFIXES.get(family.type, ("",))}  # fmt: skip


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression reads: the names that are neither a function
    (followed by ``(``), a keyword, a label (inside ``{}``, or after ``by``/``without``),
    a duration (inside ``[]``) nor a number."""
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # strings: label values
    expr = re.sub(r"\{[^}]*\}", "", expr)  # label matchers
    expr = re.sub(r"\[[^\]]*\]", "", expr)  # ranges
    expr = re.sub(r"\b(by|without|on|ignoring)\s*\([^)]*\)", "", expr)  # label lists
    names = set()
    for match in NAME.finditer(expr):
        word = match.group()
        follows = expr[match.end():].lstrip()[:1]
        if follows != "(" and word.lower() not in PROMQL_WORDS:
            names.add(word)
    return names


def panels(node: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for panel in node.get("panels", []):
        yield panel
        yield from panels(panel)  # rows hold panels


def expressions() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    return [target["expr"] for panel in panels(dashboard) for target in panel.get("targets", [])]


def test_the_name_extraction_finds_metrics_and_skips_functions_labels_and_ranges() -> None:
    expr = ('histogram_quantile(0.95, sum by (le, sink) (rate(a_bucket{sink="x"}[5m])))'
            " / on (group) b + sum without (instance) (c_total offset 1h)")  # fmt: skip
    assert metric_names(expr) == {"a_bucket", "b", "c_total"}


@pytest.mark.parametrize("expr", expressions())
def test_each_query_uses_only_exposed_metrics(expr: str) -> None:
    names = metric_names(expr)
    assert names, f"no metric in {expr!r}"
    assert names <= exposed(), f"not exposed by a worker: {sorted(names - exposed())}"


def test_the_dashboard_shows_what_an_operator_watches() -> None:
    used = set().union(*(metric_names(expr) for expr in expressions()))
    for name in ("chronox_ticks_consumed_total", "chronox_bars_emitted_total",
                 "chronox_dead_letters_total", "chronox_rest_requests_total",
                 "chronox_sink_write_seconds_bucket", "chronox_bar_sink_latency_seconds_bucket",
                 "chronox_consumer_lag", "chronox_tick_bar_latency_seconds_bucket"):  # fmt: skip
        assert name in used, name
    assert any('status="429"' in expr for expr in expressions()), "REST 429s"
