"""Every Kafka client of the worker and the commands is built by runtime/kafka.py."""

from __future__ import annotations

import re
import ssl
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from faust.auth import SASLCredentials, SSLCredentials
from faust.transport.drivers.aiokafka import credentials_to_aiokafka_auth

from chronox_stream.runtime import kafka
from chronox_stream.runtime.app import build_app
from chronox_stream.settings import Settings
from chronox_stream.stack.tls import certificates

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


@pytest.fixture(scope="module")
def ca_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real CA certificate (the stack's maker), for the TLS contexts to load."""
    path = tmp_path_factory.mktemp("tls") / "ca.pem"
    path.write_bytes(certificates(datetime.now(UTC))[0])
    return path


def test_plaintext_clients_take_no_tls_and_no_sasl() -> None:
    settings = Settings(kafka_bootstrap="k:9092")
    assert kafka.connection(settings) == {"bootstrap_servers": "k:9092",
                                          "security_protocol": "PLAINTEXT"}  # fmt: skip
    assert kafka.faust_credentials(settings) is None


def test_ssl_clients_check_the_brokers_against_the_configured_ca(ca_file: Path) -> None:
    settings = Settings(kafka_security_protocol="SSL", kafka_ssl_cafile=ca_file)
    kwargs = kafka.connection(settings)
    assert kwargs["security_protocol"] == "SSL"
    context = kwargs["ssl_context"]
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    assert [c["subject"] for c in context.get_ca_certs()] == [((("commonName",
                                                                 "chronox stack CA"),),)]
    assert "sasl_mechanism" not in kwargs
    credentials = kafka.faust_credentials(settings)
    assert isinstance(credentials, SSLCredentials)
    assert credentials_to_aiokafka_auth(credentials)["security_protocol"] == "SSL"


def test_sasl_plaintext_clients_send_their_credentials_in_clear() -> None:
    settings = Settings(kafka_security_protocol="SASL_PLAINTEXT", kafka_sasl_mechanism="PLAIN",
                        kafka_sasl_username="u", kafka_sasl_password="p4ss-w0rd")  # fmt: skip
    kwargs = kafka.connection(settings)
    assert "ssl_context" not in kwargs
    assert (kwargs["security_protocol"], kwargs["sasl_mechanism"], kwargs["sasl_plain_username"],
            kwargs["sasl_plain_password"]) == ("SASL_PLAINTEXT", "PLAIN", "u", "p4ss-w0rd")


def test_faust_connects_as_every_other_client_over_sasl_ssl(ca_file: Path) -> None:
    settings = Settings(kafka_security_protocol="SASL_SSL", kafka_sasl_mechanism="SCRAM-SHA-512",
                        kafka_sasl_username="svc", kafka_sasl_password="s3cret-pw",
                        kafka_ssl_cafile=ca_file)  # fmt: skip
    ours = kafka.connection(settings)
    credentials = kafka.faust_credentials(settings)
    assert isinstance(credentials, SASLCredentials)
    assert "s3cret-pw" not in repr(credentials)
    faust_side = credentials_to_aiokafka_auth(credentials)
    for key in ("security_protocol", "sasl_mechanism", "sasl_plain_username",
                "sasl_plain_password"):  # fmt: skip
        assert faust_side[key] == ours[key], key
    assert ours["security_protocol"] == "SASL_SSL" and ours["sasl_mechanism"] == "SCRAM-SHA-512"
    assert faust_side["ssl_context"].get_ca_certs() == ours["ssl_context"].get_ca_certs()
    app = build_app(settings.with_overrides(store="memory://"))
    assert app.conf.broker_credentials is not None
    assert app.conf.broker_credentials.protocol.value == "SASL_SSL"


def test_a_client_certificate_is_loaded_and_an_encrypted_key_needs_its_password(
    tmp_path: Path, ca_file: Path
) -> None:
    key_and_chain = certificates(datetime.now(UTC))[1]
    plain = tmp_path / "client.pem"
    plain.write_bytes(key_and_chain)
    mtls = Settings(kafka_security_protocol="SSL", kafka_ssl_cafile=ca_file,
                    kafka_ssl_certfile=plain, kafka_ssl_keyfile=plain)  # fmt: skip
    assert kafka.connection(mtls)["ssl_context"] is not None

    key = serialization.load_pem_private_key(key_and_chain, password=None)
    encrypted = tmp_path / "client.key"
    encrypted.write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"k3y-pass")))  # fmt: skip
    locked = mtls.with_overrides(kafka_ssl_keyfile=encrypted)
    with pytest.raises(ssl.SSLError):
        kafka.connection(locked)
    unlocked = locked.with_overrides(kafka_ssl_key_password="k3y-pass")
    assert kafka.connection(unlocked)["ssl_context"] is not None
