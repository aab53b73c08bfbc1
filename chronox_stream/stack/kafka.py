"""The Kafka broker of the stack: one KRaft node (broker and controller), no ZooKeeper.

Its jars are the official Apache ones from Maven Central, fetched once with
``mvn dependency:copy-dependencies`` on the shipped ``pom.xml`` into
``<stack_dir>/kafka-libs`` (and Maven's own cache), so a later ``up`` needs no
network. Storage is formatted once; after that ``up`` only starts the JVM.
The broker counts as ready when a real metadata request lists a broker.

Beside the PLAINTEXT listener the tests and the demo use, the broker listens with
SASL_SSL on ``kafka_sasl_ssl_port``: a certificate of a CA made here (``tls``) and the
SCRAM-SHA-512 user :data:`~chronox_stream.stack.tls.SCRAM_USER`, created through the
PLAINTEXT listener once the broker answers (on a new stack and on one formatted before
the listener existed alike) with Kafka's own ``ConfigCommand``, its password read from a
file, never from the command line.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import logging
import shutil
import subprocess
import uuid
from importlib import resources
from pathlib import Path
from typing import Any

from aiokafka.client import AIOKafkaClient
from aiokafka.errors import KafkaError

from chronox_stream.runtime import kafka
from chronox_stream.settings import Settings
from chronox_stream.stack import apt, procs
from chronox_stream.stack.endpoints import Endpoint, kafka_endpoint, mask, port_open
from chronox_stream.stack.layout import Layout
from chronox_stream.stack.model import StackError
from chronox_stream.stack.service import Say, Service
from chronox_stream.stack.tls import SCRAM_MECHANISM, SCRAM_USER, KafkaAuthFiles, write_private

JVM_OPTIONS = (
    "-Xms256m",
    "-Xmx512m",
    "-XX:+UseG1GC",
    "-XX:MaxGCPauseMillis=20",
    "-Djava.awt.headless=true",
)
_LIBS_STAMP = ".pom-sha256"
"""File in kafka-libs holding the hash of the pom the jars were fetched for."""


def resource_text(name: str) -> str:
    return resources.files("chronox_stream.stack").joinpath(name).read_text()


def cluster_id() -> str:
    """A random Kafka cluster id: a UUID in URL-safe base64 without padding, as Kafka makes.

    Kafka never hands out ids starting with ``-`` (a command line would read
    them as flags), so neither does this.
    """
    while True:
        value = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not value.startswith("-"):
            return value


def broker_properties(
    *, port: int, controller_port: int, sasl_ssl_port: int, keystore: Path, log_dirs: Path
) -> dict[str, str]:
    """``server.properties`` of a single combined node listening on 127.0.0.1 only: PLAINTEXT
    on ``port`` (also between broker and controller) and SASL_SSL with SCRAM-SHA-512 on
    ``sasl_ssl_port``, its certificate and key in the PEM file ``keystore``."""
    sasl = "listener.name.sasl_ssl."
    return {
        "process.roles": "broker,controller",
        "node.id": "1",
        "controller.quorum.voters": f"1@127.0.0.1:{controller_port}",
        "listeners": f"PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller_port},"
        f"SASL_SSL://127.0.0.1:{sasl_ssl_port}",
        "advertised.listeners": f"PLAINTEXT://127.0.0.1:{port},"
        f"SASL_SSL://127.0.0.1:{sasl_ssl_port}",
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "PLAINTEXT",
        "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,"
        "SASL_SSL:SASL_SSL",
        "sasl.enabled.mechanisms": SCRAM_MECHANISM,
        f"{sasl}{SCRAM_MECHANISM.lower()}.sasl.jaas.config":
            "org.apache.kafka.common.security.scram.ScramLoginModule required;",
        f"{sasl}ssl.keystore.type": "PEM",
        f"{sasl}ssl.keystore.location": str(keystore),
        "log.dirs": str(log_dirs),
        "offsets.topic.replication.factor": "1",
        "transaction.state.log.replication.factor": "1",
        "transaction.state.log.min.isr": "1",
        "group.initial.rebalance.delay.ms": "0",
        "auto.create.topics.enable": "false",
    }


def render_properties(values: dict[str, str]) -> str:
    """Java properties text (backslashes doubled: Java reads them as escapes)."""
    lines = ["# Written by `chronox stack up` on every start; edits are overwritten."]
    lines += [key + "=" + value.replace("\\", "\\\\") for key, value in values.items()]
    return "\n".join(lines) + "\n"


def sasl_ssl_client(settings: Settings) -> Settings:
    """``settings`` pointed at the SASL_SSL listener of the stack they describe: its port,
    the stack's CA and SCRAM user (the files ``chronox stack up`` made)."""
    files = KafkaAuthFiles(Layout.from_settings(settings).kafka_auth)
    host = kafka_endpoint(settings.kafka_bootstrap).host
    return settings.with_overrides(
        kafka_bootstrap=f"{host}:{settings.kafka_sasl_ssl_port}",
        kafka_security_protocol="SASL_SSL",
        kafka_sasl_mechanism=SCRAM_MECHANISM,
        kafka_sasl_username=SCRAM_USER,
        kafka_sasl_password=files.read_password(),
        kafka_ssl_cafile=files.ca,
    )


async def broker_answers(endpoint: Endpoint, **security: Any) -> bool:
    """True when a metadata request to the endpoint (with the ``security`` arguments of
    aiokafka, PLAINTEXT without) lists at least one broker. A failure is the answer, so
    aiokafka's own error line about it (printed on stderr otherwise) is silenced meanwhile."""
    if not await port_open(endpoint):
        return False
    client = AIOKafkaClient(
        **{"bootstrap_servers": str(endpoint), **security}, request_timeout_ms=5000
    )
    client_log = logging.getLogger("aiokafka.client")
    level = client_log.level
    client_log.setLevel(logging.CRITICAL)
    try:
        await client.bootstrap()
        return bool(client.cluster.brokers())
    except (KafkaError, OSError, TimeoutError):
        return False
    finally:
        client_log.setLevel(level)
        await client.close()


class Kafka(Service):
    name = "kafka"
    ready_timeout_s = 90.0
    stop_grace_s = 30.0

    @property
    def endpoint(self) -> Endpoint:
        return kafka_endpoint(self.settings.kafka_bootstrap)

    @property
    def properties_file(self) -> Path:
        return self.layout.kafka / "server.properties"

    @property
    def log4j_file(self) -> Path:
        return self.layout.kafka / "log4j.properties"

    @property
    def data_dir(self) -> Path:
        return self.layout.kafka / "data"

    @property
    def auth(self) -> KafkaAuthFiles:
        return KafkaAuthFiles(self.layout.kafka_auth)

    @property
    def sasl_ssl_endpoint(self) -> Endpoint:
        return Endpoint(self.endpoint.host, self.settings.kafka_sasl_ssl_port)

    async def sasl_ssl_answers(self) -> bool:
        """True when the stack's SCRAM user gets metadata through the SASL_SSL listener."""
        client = sasl_ssl_client(self.settings)
        security = {k: v for k, v in kafka.connection(client).items() if k != "bootstrap_servers"}
        return await broker_answers(self.sasl_ssl_endpoint, **security)

    async def finish(self, say: Say) -> None:
        """Create the SCRAM user through the PLAINTEXT listener unless it already signs in
        (a broker formatted before the listener existed gets it too)."""
        if not await port_open(self.sasl_ssl_endpoint):
            say(f"kafka: no SASL_SSL listener on {self.sasl_ssl_endpoint} (the broker was "
                "started before it existed): `chronox stack down` and `chronox stack up` add it")
            return
        if await self.sasl_ssl_answers():
            return
        say(f"kafka: creating the SCRAM user {SCRAM_USER}")
        await asyncio.to_thread(self._add_scram_user)
        if not await procs.wait_until(self.sasl_ssl_answers, timeout_s=30, gave_up=lambda: None):
            raise StackError(
                f"kafka: the SCRAM user {SCRAM_USER} cannot sign in on {self.sasl_ssl_endpoint}; "
                f"see {self.log}"
            )

    def _add_scram_user(self) -> None:
        """``ConfigCommand`` adds the user's credential, the password from a private file."""
        request = self.auth.folder / "scram-request.properties"
        password = self.auth.read_password()
        write_private(request, f"{SCRAM_MECHANISM}=password={password}\n".encode())
        argv = self._java_argv(self._java_command(), "kafka.admin.ConfigCommand",
                               "--bootstrap-server", str(self.endpoint), "--alter",
                               "--entity-type", "users", "--entity-name", SCRAM_USER,
                               "--add-config-file", str(request))  # fmt: skip
        try:
            # Its output stays here: a refused credential is echoed with the password.
            done = subprocess.run(argv, cwd=self.layout.kafka, stdin=subprocess.DEVNULL,
                                  capture_output=True, text=True)  # fmt: skip
        finally:
            request.unlink(missing_ok=True)
        if done.returncode != 0:
            lines = mask(done.stdout + done.stderr, [password]).strip().splitlines()
            raise StackError(f"kafka: creating the SCRAM user {SCRAM_USER} failed: "
                             + (lines[-1] if lines else f"exit code {done.returncode}"))

    async def answers(self) -> bool:
        return await broker_answers(self.endpoint)

    async def install(self, say: Say) -> None:
        await asyncio.to_thread(self._install, say)

    async def start(self, say: Say) -> int:
        return await asyncio.to_thread(self._start, say)

    def _java_command(self) -> str:
        return apt.ensure_command("java", "openjdk-17-jre-headless", log=self.layout.log("apt"))

    def _install(self, say: Say) -> None:
        self._java_command()
        self._fetch_jars(say)

    def _start(self, say: Say) -> int:
        java = self._java_command()
        self._write_config()
        if not (self.data_dir / "meta.properties").exists():
            say("kafka: formatting storage")
            props = str(self.properties_file)
            self._java(java, "kafka.tools.StorageTool", "format", "-t", cluster_id(), "-c", props)
        return procs.spawn_detached(
            self._java_argv(java, "kafka.Kafka", str(self.properties_file)),
            cwd=self.layout.kafka,
            log=self.log,
        )

    def _write_config(self) -> None:
        self.layout.kafka.mkdir(parents=True, exist_ok=True)
        self.auth.ensure()
        props = broker_properties(
            port=self.endpoint.port,
            controller_port=self.settings.kafka_controller_port,
            sasl_ssl_port=self.settings.kafka_sasl_ssl_port,
            keystore=self.auth.keystore,
            log_dirs=self.data_dir,
        )
        self.properties_file.write_text(render_properties(props))
        self.log4j_file.write_text(resource_text("log4j.properties"))

    def _fetch_jars(self, say: Say) -> None:
        """Fill kafka-libs from Maven unless it holds the jars of the current pom."""
        libs = self.layout.kafka_libs
        pom = resource_text("pom.xml")
        digest = hashlib.sha256(pom.encode()).hexdigest()
        stamp = libs / _LIBS_STAMP
        if stamp.exists() and stamp.read_text().strip() == digest:
            return
        mvn = apt.ensure_command("mvn", "maven", log=self.layout.log("apt"))
        say("kafka: fetching the broker's jars from Maven Central (once)")
        work = self.layout.root / "kafka-pom"
        fresh = self.layout.root / "kafka-libs.new"
        shutil.rmtree(fresh, ignore_errors=True)
        work.mkdir(parents=True, exist_ok=True)
        (work / "pom.xml").write_text(pom)
        log = self.layout.log("kafka-fetch")
        with log.open("ab") as out:
            fetched = subprocess.run(
                [mvn, "-q", "-B", "dependency:copy-dependencies", f"-DoutputDirectory={fresh}"],
                cwd=work,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        if fetched.returncode != 0:
            raise StackError(f"kafka: fetching the jars with Maven failed; see {log}")
        shutil.rmtree(libs, ignore_errors=True)
        fresh.rename(libs)
        stamp.write_text(digest + "\n")

    def _java_argv(self, java: str, main: str, *args: str) -> list[str]:
        return [
            java,
            *JVM_OPTIONS,
            f"-Dlog4j.configuration=file:{self.log4j_file}",
            "-cp",
            f"{self.layout.kafka_libs}/*",
            main,
            *args,
        ]

    def _java(self, java: str, main: str, *args: str) -> None:
        """Run a Kafka tool to completion, output appended to the broker's log."""
        argv = self._java_argv(java, main, *args)
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with self.log.open("ab") as out:
            done = subprocess.run(
                argv, cwd=self.layout.kafka, stdin=subprocess.DEVNULL, stdout=out, stderr=out
            )
        if done.returncode != 0:
            raise StackError(f"kafka: {main} failed; see {self.log}")
