"""docker-compose.yml cannot run here (no Docker engine), so its shape is checked instead."""

import json
import re
from pathlib import Path

import yaml

from chronox_stream.settings import Settings
from chronox_stream.sources.urls import check_settings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def mounts(service: str) -> dict[str, str]:
    """The service's bind mounts and volumes: path in the container -> source."""
    pairs = (volume.split(":")[:2] for volume in COMPOSE["services"][service].get("volumes", []))
    return {target: source for source, target in pairs}


def test_compose_runs_the_whole_stack_and_scalable_workers() -> None:
    services = COMPOSE["services"]
    assert set(services) == {"kafka", "postgres", "redis", "sim", "worker", "prometheus",
                             "grafana"}  # fmt: skip
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
    assert f"127.0.0.1:{Settings().web_port}/ready" in " ".join(worker["healthcheck"]["test"])


def test_the_worker_settings_pass_the_start_check() -> None:
    env = COMPOSE["services"]["worker"]["environment"]
    settings = Settings.model_validate(
        {name.removeprefix("CHRONOX_").lower(): value for name, value in env.items()}
    )
    check_settings(settings)


def test_kafka_serves_containers_and_host_clients_on_two_listeners() -> None:
    kafka = COMPOSE["services"]["kafka"]
    env = kafka["environment"]
    listeners = dict(item.split("://") for item in env["KAFKA_ADVERTISED_LISTENERS"].split(","))
    assert listeners["PLAINTEXT"] == "kafka:9092", "what the containers use"
    host = listeners["EXTERNAL"]
    assert host.startswith("localhost:")
    assert f"127.0.0.1:{host.split(':')[1]}:{host.split(':')[1]}" in kafka["ports"]
    assert f"EXTERNAL://:{host.split(':')[1]}" in env["KAFKA_LISTENERS"]
    assert "EXTERNAL:PLAINTEXT" in env["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"]


def test_every_service_restarts_and_keeps_its_state_in_named_volumes() -> None:
    declared = set(COMPOSE["volumes"])
    for name, service in COMPOSE["services"].items():
        assert service["restart"] == "unless-stopped", name
    used = {source for name in COMPOSE["services"] for source in mounts(name).values()
            if not source.startswith(".")}  # fmt: skip
    assert used == declared
    for name, path in (("kafka", COMPOSE["services"]["kafka"]["environment"]["KAFKA_LOG_DIRS"]),
                       ("postgres", "/var/lib/postgresql/data"), ("redis", "/data"),
                       ("prometheus", "/prometheus"), ("grafana", "/var/lib/grafana")):  # fmt: skip
        assert mounts(name)[path] in declared, name


def test_prometheus_scrapes_every_worker_and_grafana_shows_the_dashboard() -> None:
    prometheus = mounts("prometheus")
    config = yaml.safe_load((ROOT / prometheus["/etc/prometheus/prometheus.yml"]).read_text())
    (job,) = config["scrape_configs"]
    assert job["metrics_path"] == "/metrics"
    (lookup,) = job["dns_sd_configs"]
    assert lookup["names"] == ["worker"] and lookup["port"] == Settings().web_port

    grafana = mounts("grafana")
    provisioning = ROOT / grafana["/etc/grafana/provisioning"]
    (source,) = yaml.safe_load((provisioning / "datasources/prometheus.yml").read_text())[
        "datasources"]  # fmt: skip
    assert source["url"] == "http://prometheus:9090"
    (provider,) = yaml.safe_load((provisioning / "dashboards/chronox.yml").read_text())["providers"]
    folder = ROOT / grafana[provider["options"]["path"]]
    dashboard = json.loads((folder / "chronox.json").read_text())
    uids = {panel["datasource"]["uid"] for panel in dashboard["panels"]}
    assert uids == {source["uid"]}


def test_the_image_is_built_in_stages_runs_unprivileged_and_gets_no_local_state() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    stages = re.split(r"^FROM ", dockerfile, flags=re.MULTILINE)[1:]
    assert len(stages) >= 2
    users = re.findall(r"^USER (\S+)", stages[-1], flags=re.MULTILINE)
    assert users and users[-1] not in {"root", "0"}
    ignored = set((ROOT / ".dockerignore").read_text().split())
    assert {".venv", ".chronox", ".git"} <= ignored
