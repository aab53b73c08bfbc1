"""Every name chronox-stream gives to something outside the process, in one place.

Kafka topics (``<prefix>.<name>``), the changelogs Faust keeps for our tables
(``<app id>-<table>-changelog``), consumer groups, and Redis keys and channels
(each after ``CHRONOX_REDIS_PREFIX``). Workers, the CLI's commands and the
status report all derive a name from here, so the two sides of a topic or a key
cannot drift apart; no other module spells one. The names are part of the
user-facing contract (the README's diagram and Redis section).
"""

from __future__ import annotations

from dataclasses import dataclass

from chronox_stream.domain.timeframes import TIMEFRAMES
from chronox_stream.settings import Settings


@dataclass(frozen=True, slots=True)
class TopicNames:
    """Full names of the application's topics for one prefix."""

    control: str
    registry: str
    work: str
    status: str
    dlq: str
    bars: dict[str, str]
    ticks_raw: str
    ticks_state: str
    ticks_bars: str

    @classmethod
    def for_settings(cls, settings: Settings) -> TopicNames:
        return cls(
            control=settings.topic("control"),
            registry=settings.topic("registry"),
            work=settings.topic("work"),
            status=settings.topic("status"),
            dlq=settings.topic("dlq"),
            bars={tf: settings.topic(f"bars.{tf}") for tf in TIMEFRAMES},
            ticks_raw=settings.topic("ticks.raw"),
            ticks_state=settings.topic("ticks.state"),
            ticks_bars=settings.topic("ticks.bars"),
        )


# Faust tables: the name each is declared with, which names its changelog topic.
REGISTRY_TABLE = "registry"
DEDUP_TABLE = "dedup"
BACKFILL_STATE_TABLE = "backfill-state"


def changelog_topic(settings: Settings, table: str) -> str:
    """The topic Faust keeps ``table``'s changelog in (read by the CLI's commands)."""
    return f"{settings.app_id}-{table}-changelog"


def leader_topic(settings: Settings) -> str:
    """The one-partition topic Faust's assignor elects the group's leader with."""
    return f"{settings.app_id}-__assignor-__leader"


# Consumer groups besides the Faust agents' own (whose group id is the app id).
TICKS_GROUP = "ticks"


def sink_group(sink: str) -> str:
    """The group of one sink's mirror (``postgres``, ``redis``): each reads every bar."""
    return f"sink-{sink}"


def group_id(settings: Settings, group: str | None = None) -> str:
    """The id of one of the app's consumer groups: the agents' (``None``) or a batch
    consumer's (``TICKS_GROUP``, ``sink_group(...)``)."""
    return settings.app_id if group is None else f"{settings.app_id}-{group}"


# Redis, each after the deployment's prefix.
def bars_channel(prefix: str, symbol: str, tf: str) -> str:
    """Pub/sub channel of a symbol's published bars."""
    return f"{prefix}bars:{symbol}:{tf}"


def live_channel(prefix: str, symbol: str, tf: str) -> str:
    """Pub/sub channel of a symbol's in-progress bars (``CHRONOX_TICK_LIVE_MS``)."""
    return f"{prefix}live:{symbol}:{tf}"


def latest_bar_key(prefix: str, symbol: str, tf: str) -> str:
    """Key holding the newest bar of a symbol and timeframe."""
    return f"{prefix}bars:latest:{symbol}:{tf}"


def rest_rate_key(prefix: str, window: int) -> str:
    """Counter of the REST requests the workers sent in one minute (``window``: epoch minute)."""
    return f"{prefix}ratelimit:rest:{window}"


def stream_state_key(prefix: str) -> str:
    """Key of the stream state the leader refreshes for ``chronox status``."""
    return f"{prefix}stream:state"
