"""Every Kafka client of the worker and the commands is built by runtime/kafka.py."""

from __future__ import annotations

import re
from pathlib import Path

from chronox_stream.runtime import kafka
from chronox_stream.settings import Settings

ROOT = Path(__file__).resolve().parents[3]
CLIENT = re.compile(r"\bAIOKafka(Producer|Consumer|AdminClient)\(|\bfaust\.App\(")
#: The factory itself, the Faust app (it takes its broker and tuning from the factory), and
#: the local stack and simulator, which are not the worker.
ALLOWED = {"chronox_stream/runtime/kafka.py", "chronox_stream/runtime/app.py"}
APART = ("chronox_stream/stack/", "chronox_stream/sim/")


def test_no_module_but_the_factory_builds_a_kafka_client() -> None:
    sources = [*ROOT.glob("chronox_stream/**/*.py"), *ROOT.glob("agents/*.py"),
               *ROOT.glob("tables/*.py")]  # fmt: skip
    builders = {
        path.relative_to(ROOT).as_posix()
        for path in sources
        if not path.is_symlink() and CLIENT.search(path.read_text())
    }
    assert {p for p in builders if not p.startswith(APART)} <= ALLOWED


def test_the_app_and_every_client_reach_the_same_brokers() -> None:
    settings = Settings(kafka_bootstrap="kafka-a:9092,kafka-b:9092")
    assert kafka.connection(settings)["bootstrap_servers"] == "kafka-a:9092,kafka-b:9092"
    assert kafka.faust_broker(settings) == "kafka://kafka-a:9092,kafka-b:9092"
