"""docker-compose.yml cannot run here (no Docker engine), so its shape is checked instead."""

from pathlib import Path

import yaml

from chronox_stream.settings import Settings
from chronox_stream.sources.urls import check_settings

COMPOSE = yaml.safe_load((Path(__file__).resolve().parents[2] / "docker-compose.yml").read_text())


def test_compose_runs_the_whole_stack_and_scalable_workers() -> None:
    services = COMPOSE["services"]
    assert set(services) == {"kafka", "postgres", "redis", "sim", "worker"}
    assert services["worker"]["command"] == ["chronox", "worker"]
    assert "container_name" not in services["worker"], "a fixed name would break --scale"
    assert "ports" not in services["worker"], "published ports would collide under --scale"


def test_kafka_is_kraft_without_auto_topic_creation() -> None:
    env = COMPOSE["services"]["kafka"]["environment"]
    assert env["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert env["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"
    assert "KAFKA_ZOOKEEPER_CONNECT" not in env


def test_ports_are_published_on_loopback_only() -> None:
    for name, service in COMPOSE["services"].items():
        for mapping in service.get("ports", []):
            assert mapping.startswith("127.0.0.1:"), (name, mapping)


def test_every_variable_is_a_setting_and_points_at_compose_services() -> None:
    fields = {f"CHRONOX_{name.upper()}" for name in Settings.model_fields}
    for name in ("sim", "worker"):
        env = COMPOSE["services"][name]["environment"]
        assert set(env) <= fields, set(env) - fields
        assert env["CHRONOX_KAFKA_BOOTSTRAP"] == "kafka:9092"
        assert "@postgres:5432/" in env["CHRONOX_POSTGRES_DSN"]
        assert env["CHRONOX_REDIS_URL"].startswith("redis://redis:6379")
        assert env["CHRONOX_POLYGON_REST_URL"] == "http://sim:8765"


def test_workers_serve_health_pages_to_other_containers() -> None:
    worker = COMPOSE["services"]["worker"]
    env = worker["environment"]
    assert env["CHRONOX_WEB_ENABLED"] == "true"
    assert env["CHRONOX_WEB_BIND"] == "0.0.0.0"
    assert Settings().web_bind == "127.0.0.1", "outside a container: loopback"
    assert f":{Settings().web_port}/health" in " ".join(worker["healthcheck"]["test"])


def test_the_worker_settings_pass_the_start_check() -> None:
    env = COMPOSE["services"]["worker"]["environment"]
    settings = Settings.model_validate(
        {name.removeprefix("CHRONOX_").lower(): value for name, value in env.items()}
    )
    check_settings(settings)
