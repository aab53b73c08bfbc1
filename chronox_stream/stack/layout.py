"""Where the local stack keeps its files: one absolute folder, the same for every command.

``up``, ``down`` and ``status`` each derive the same paths from ``stack_dir``, so
a pid file written by one command is the one the next command reads.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from chronox_stream.settings import Settings


@dataclass(frozen=True)
class Layout:
    """The folders below ``stack_dir`` (resolved to an absolute path)."""

    root: Path

    @classmethod
    def from_settings(cls, settings: Settings) -> Layout:
        return cls(Path(settings.stack_dir).expanduser().resolve())

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def pids(self) -> Path:
        return self.root / "pids"

    @property
    def kafka(self) -> Path:
        """Broker configuration, working directory and (under ``data``) its log dirs."""
        return self.root / "kafka"

    @property
    def kafka_auth(self) -> Path:
        """The SASL_SSL listener's CA, broker keystore and SCRAM password (owner only)."""
        return self.root / "kafka-auth"

    @property
    def kafka_libs(self) -> Path:
        """The broker's jars, fetched once with Maven."""
        return self.root / "kafka-libs"

    @property
    def postgres(self) -> Path:
        """Our own PostgreSQL cluster (``data``) and its socket folder (``run``)."""
        return self.root / "postgres"

    @property
    def redis(self) -> Path:
        return self.root / "redis"

    def log(self, service: str) -> Path:
        return self.logs / f"{service}.log"

    def pid_file(self, service: str) -> Path:
        return self.pids / f"{service}.pid"

    def create(self) -> None:
        """Create the folders every service needs (logs and pid files)."""
        for folder in (self.logs, self.pids):
            folder.mkdir(parents=True, exist_ok=True)
