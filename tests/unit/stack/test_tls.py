"""The stack's SASL_SSL material: a CA, a broker certificate it signs for loopback, a password."""

from __future__ import annotations

import ipaddress
import stat
from pathlib import Path

from cryptography import x509

from chronox_stream.stack.kafka import broker_properties
from chronox_stream.stack.tls import KafkaAuthFiles


def test_the_broker_certificate_is_signed_by_the_ca_for_loopback(tmp_path: Path) -> None:
    files = KafkaAuthFiles(tmp_path / "auth")
    files.ensure()
    ca = x509.load_pem_x509_certificate(files.ca.read_bytes())
    broker = x509.load_pem_x509_certificates(files.keystore.read_bytes())[0]
    broker.verify_directly_issued_by(ca)
    names = broker.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "localhost" in names.get_values_for_type(x509.DNSName)
    assert ipaddress.ip_address("127.0.0.1") in names.get_values_for_type(x509.IPAddress)
    assert b"-----BEGIN PRIVATE KEY-----" in files.keystore.read_bytes()


def test_the_key_and_password_are_private_and_made_once(tmp_path: Path) -> None:
    files = KafkaAuthFiles(tmp_path / "auth")
    files.ensure()
    first = (files.ca.read_bytes(), files.read_password())
    files.ensure()
    assert (files.ca.read_bytes(), files.read_password()) == first
    assert len(first[1]) >= 24
    for private in (files.keystore, files.password):
        assert stat.S_IMODE(private.stat().st_mode) == 0o600
    assert stat.S_IMODE(files.folder.stat().st_mode) == 0o700


def test_the_broker_listens_with_sasl_ssl_beside_plaintext(tmp_path: Path) -> None:
    props = broker_properties(port=1, controller_port=2, sasl_ssl_port=3,
                              keystore=tmp_path / "k.pem", log_dirs=tmp_path)  # fmt: skip
    assert "SASL_SSL://127.0.0.1:3" in props["advertised.listeners"]
    assert "PLAINTEXT://127.0.0.1:1" in props["advertised.listeners"]
    assert props["inter.broker.listener.name"] == "PLAINTEXT"
    assert props["sasl.enabled.mechanisms"] == "SCRAM-SHA-512"
    assert props["listener.name.sasl_ssl.ssl.keystore.location"] == str(tmp_path / "k.pem")
