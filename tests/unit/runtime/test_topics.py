"""What the topics are created with: replication factor, min ISR and retention per topic."""

from __future__ import annotations

from typing import Any

import pytest
from aiokafka.admin import NewTopic

from chronox_stream.runtime import topics
from chronox_stream.runtime.names import TopicNames
from chronox_stream.settings import Settings


def test_by_default_topics_take_the_brokers_retention_and_one_replica() -> None:
    settings = Settings()
    specs = {s.name: s.config for s in topics.topic_specs(settings)}
    assert not any("retention.ms" in c or "min.insync.replicas" in c for c in specs.values())


def test_retention_follows_each_topic_kind_and_changelogs_stay_compacted() -> None:
    settings = Settings(topic_retention_bars_ms=-1, topic_retention_ticks_ms=3_600_000,
                        topic_retention_dlq_ms=1_209_600_000, topic_retention_status_ms=86_400_000,
                        topic_replication_factor=3, topic_min_insync_replicas=2)  # fmt: skip
    names = TopicNames.for_settings(settings)
    specs = {s.name: s.config for s in topics.topic_specs(settings)}
    assert all(c["min.insync.replicas"] == "2" for c in specs.values())
    assert {specs[n]["retention.ms"] for n in names.bars.values()} == {"-1"}
    assert specs[names.ticks_raw]["retention.ms"] == "3600000"
    assert specs[names.ticks_bars]["retention.ms"] == "3600000"
    assert specs[names.dlq]["retention.ms"] == "1209600000"
    assert specs[names.status]["retention.ms"] == "86400000"
    for name in (names.control, names.registry, names.work):
        assert "retention.ms" not in specs[name]
    compacted = [n for n, c in specs.items() if c.get("cleanup.policy") == "compact"]
    assert names.ticks_state in compacted and len(compacted) == 4
    assert not any("retention.ms" in specs[n] for n in compacted)


async def test_ensure_topics_creates_them_with_the_replication_factor_and_config(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = Settings(topic_replication_factor=3, topic_min_insync_replicas=2,
                        topic_retention_dlq_ms=1000)  # fmt: skip
    requested: list[NewTopic] = []

    class Admin:
        async def start(self) -> None: ...
        async def close(self) -> None: ...

        async def create_topics(self, new: list[NewTopic]) -> Any:
            requested.extend(new)
            return type("Response", (), {"topic_errors": [(t.name, 0) for t in new]})()

    monkeypatch.setattr(topics.kafka, "admin", lambda _: Admin())
    created = await topics.ensure_topics(settings)
    assert created == [t.name for t in requested]
    assert {t.replication_factor for t in requested} == {3}
    dlq = next(t for t in requested if t.name == settings.topic("dlq"))
    assert dlq.topic_configs == {"retention.ms": "1000", "min.insync.replicas": "2"}


def test_faust_declares_each_topic_and_changelog_as_ensure_topics_creates_it() -> None:
    from chronox_stream.runtime.app import build_runtime

    settings = Settings(store="memory://", topic_replication_factor=3,
                        topic_min_insync_replicas=2, topic_retention_bars_ms=5)  # fmt: skip
    runtime = build_runtime(settings)
    bars = runtime.topics.bars["1m"]
    assert bars.replicas == 3
    assert bars.config == {"retention.ms": "5", "min.insync.replicas": "2"}
    assert runtime.app.conf.topic_replication_factor == 3
    changelog = runtime.tables.dedup.table.changelog_topic
    assert changelog.config["min.insync.replicas"] == "2"
