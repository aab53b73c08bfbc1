"""The local broker's TLS material and SCRAM password: made once, kept in the stack folder.

``chronox stack up`` gives the broker a SASL_SSL listener beside its PLAINTEXT one, so
that the secured path of every client can be tried on this machine. It needs a CA the
clients trust (``ca.pem``), a broker certificate for ``127.0.0.1`` / ``localhost`` signed
by it with its key, in the PEM keystore form Kafka reads (``broker-keystore.pem``), and the
password of the stack's SCRAM user (``scram-password``). The private key and the password
files are written with mode 0600 and never printed; the CA's own key is not kept (a new
broker certificate comes with a new CA).
"""

from __future__ import annotations

import ipaddress
import os
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

#: The SCRAM user the stack creates on its broker.
SCRAM_USER = "chronox"
SCRAM_MECHANISM = "SCRAM-SHA-512"
VALID_FOR = timedelta(days=3650)
HOST_NAMES = ("localhost",)
HOST_ADDRESSES = ("127.0.0.1", "::1")


@dataclass(frozen=True)
class KafkaAuthFiles:
    """The files of one stack's SASL_SSL listener, in ``folder``."""

    folder: Path

    @property
    def ca(self) -> Path:
        """The CA certificate clients check the broker against (``kafka_ssl_cafile``)."""
        return self.folder / "ca.pem"

    @property
    def keystore(self) -> Path:
        """The broker's private key and certificate chain (Kafka's PEM keystore)."""
        return self.folder / "broker-keystore.pem"

    @property
    def password(self) -> Path:
        """The SCRAM password of :data:`SCRAM_USER` (``kafka_sasl_password``)."""
        return self.folder / "scram-password"

    def ensure(self) -> None:
        """Make what is missing: the CA and broker certificate together, the password once."""
        self.folder.mkdir(parents=True, exist_ok=True)
        os.chmod(self.folder, 0o700)
        if not (self.ca.is_file() and self.keystore.is_file()):
            ca_pem, keystore_pem = certificates(datetime.now(UTC))
            write_private(self.keystore, keystore_pem)
            self.ca.write_bytes(ca_pem)
        if not self.password.is_file():
            write_private(self.password, secrets.token_urlsafe(24).encode())

    def read_password(self) -> str:
        return self.password.read_text().strip()


def write_private(path: Path, data: bytes) -> None:
    """Write ``data`` to a new file only its owner may read (replacing any old one)."""
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(data)


def certificates(now: datetime) -> tuple[bytes, bytes]:
    """A fresh self-signed CA and a broker certificate it signs, valid from ``now``: the
    CA's PEM, and the broker's unencrypted PKCS#8 key followed by its certificate."""
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "chronox stack CA")])
    ca_ski = x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key())
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + VALID_FOR)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(cert_sign=True), critical=True)
        .add_extension(ca_ski, critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    names: list[x509.GeneralName] = [x509.DNSName(name) for name in HOST_NAMES]
    names += [x509.IPAddress(ipaddress.ip_address(a)) for a in HOST_ADDRESSES]
    broker = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + VALID_FOR)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(cert_sign=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    key_pem = key.private_bytes(
        pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return ca.public_bytes(pem), key_pem + broker.public_bytes(pem) + ca.public_bytes(pem)


def _key_usage(*, cert_sign: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=not cert_sign,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=cert_sign,
        crl_sign=cert_sign,
        encipher_only=False,
        decipher_only=False,
    )
