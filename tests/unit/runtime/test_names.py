"""External names: what the README documents, and the changelogs Faust really writes."""

from __future__ import annotations

import faust

from chronox_stream.runtime.names import (
    BACKFILL_STATE_TABLE,
    DEDUP_TABLE,
    REGISTRY_TABLE,
    TICKS_GROUP,
    TopicNames,
    bars_channel,
    changelog_topic,
    group_id,
    latest_bar_key,
    live_channel,
    sink_group,
)
from chronox_stream.settings import Settings

SETTINGS = Settings(topic_prefix="acme", app_id="acme-app")


def test_redis_names_are_the_documented_ones_after_the_prefix() -> None:
    assert bars_channel("p:", "AAPL", "1m") == "p:bars:AAPL:1m"
    assert latest_bar_key("p:", "AAPL", "1m") == "p:bars:latest:AAPL:1m"
    assert live_channel("p:", "AAPL", "5m") == "p:live:AAPL:5m"


def test_topics_and_groups_carry_the_prefix_and_the_app_id() -> None:
    names = TopicNames.for_settings(SETTINGS)
    assert (names.control, names.bars["1d"], names.ticks_raw) == (
        "acme.control", "acme.bars.1d", "acme.ticks.raw")  # fmt: skip
    assert group_id(SETTINGS) == "acme-app"
    assert group_id(SETTINGS, TICKS_GROUP) == "acme-app-ticks"
    assert group_id(SETTINGS, sink_group("postgres")) == "acme-app-sink-postgres"


def test_the_changelogs_read_by_the_cli_are_those_faust_writes() -> None:
    app = faust.App(SETTINGS.app_id, autodiscover=False)
    for table in (REGISTRY_TABLE, DEDUP_TABLE, BACKFILL_STATE_TABLE):
        written = app.Table(table).changelog_topic.get_topic_name()
        assert changelog_topic(SETTINGS, table) == written
