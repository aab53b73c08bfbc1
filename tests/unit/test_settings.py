"""Settings as loaded: the Kafka security and durability settings are refused at load when
they cannot work, with a message naming the settings and never a secret; the API key is read
from the project's variable or the names Polygon's and Massive's clients read, the
project's winning."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from chronox_stream.settings import Settings

SECRET = "Sup3r-S3cret-pw"


def refusal(**values: Any) -> str:
    with pytest.raises(ValidationError) as caught:
        Settings(**values)
    message = str(caught.value)
    assert SECRET not in message
    return message


@pytest.mark.parametrize("protocol", ["SASL_PLAINTEXT", "SASL_SSL"])
def test_sasl_needs_a_mechanism_a_user_and_a_password(protocol: str) -> None:
    message = refusal(kafka_security_protocol=protocol, kafka_sasl_password=SECRET)
    assert f"kafka_security_protocol {protocol} needs kafka_sasl_mechanism, " \
           "kafka_sasl_username" in message
    assert "kafka_sasl_password" not in message.split("needs")[1]
    assert "kafka_sasl_password" in refusal(kafka_security_protocol=protocol,
                                            kafka_sasl_mechanism="PLAIN", kafka_sasl_username="u")


def test_a_certificate_without_its_key_is_refused(tmp_path: Path) -> None:
    cert = tmp_path / "client.pem"
    cert.write_text("x")
    message = refusal(kafka_security_protocol="SSL", kafka_ssl_certfile=cert,
                      kafka_ssl_key_password=SECRET)
    assert "kafka_ssl_certfile and kafka_ssl_keyfile go together" in message
    assert "kafka_ssl_key_password is set without kafka_ssl_keyfile" in message


def test_tls_files_need_a_tls_protocol_and_must_exist(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("x")
    assert "kafka_security_protocol is PLAINTEXT" in refusal(kafka_ssl_cafile=ca)
    missing = tmp_path / "nowhere.pem"
    assert f"kafka_ssl_cafile is not a readable file: {missing}" in refusal(
        kafka_security_protocol="SSL", kafka_ssl_cafile=missing)


def test_unknown_protocols_and_mechanisms_are_refused() -> None:
    refusal(kafka_security_protocol="TLS")
    refusal(kafka_security_protocol="SASL_SSL", kafka_sasl_mechanism="GSSAPI",
            kafka_sasl_username="u", kafka_sasl_password=SECRET)


def test_min_insync_replicas_cannot_exceed_the_replication_factor() -> None:
    assert "topic_min_insync_replicas exceeds topic_replication_factor" in refusal(
        topic_replication_factor=2, topic_min_insync_replicas=3)
    assert Settings(topic_replication_factor=3, topic_min_insync_replicas=2)


def test_a_complete_sasl_ssl_setting_loads_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("x")
    for name, value in {"SECURITY_PROTOCOL": "SASL_SSL", "SASL_MECHANISM": "SCRAM-SHA-256",
                        "SASL_USERNAME": "svc", "SASL_PASSWORD": SECRET,
                        "SSL_CAFILE": str(ca)}.items():  # fmt: skip
        monkeypatch.setenv(f"CHRONOX_KAFKA_{name}", value)
    settings = Settings()
    assert settings.kafka_sasl_mechanism == "SCRAM-SHA-256"
    assert SECRET not in repr(settings)

NAMES = ("CHRONOX_POLYGON_API_KEY", "POLYGON_API_KEY", "MASSIVE_API_KEY")


@pytest.mark.parametrize(
    ("env", "key"),
    [({"POLYGON_API_KEY": "from-polygon"}, "from-polygon"),
     ({"MASSIVE_API_KEY": "from-massive"}, "from-massive"),
     ({"CHRONOX_POLYGON_API_KEY": "own", "POLYGON_API_KEY": "p", "MASSIVE_API_KEY": "m"}, "own"),
     ({"POLYGON_API_KEY": "p", "MASSIVE_API_KEY": "m"}, "p"),
     ({}, "")],
)  # fmt: skip
def test_the_first_key_variable_set_wins(
    env: dict[str, str], key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in NAMES:
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    settings = Settings()
    assert settings.polygon_api_key.get_secret_value() == key
    assert settings.to_env()["CHRONOX_POLYGON_API_KEY"] == key, "a child process gets it too"
    assert settings.with_overrides(topic_prefix="x").polygon_api_key.get_secret_value() == key
    assert Settings(polygon_api_key="given").polygon_api_key.get_secret_value() == "given"
