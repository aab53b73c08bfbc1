"""Flags shared by the ``chronox`` commands, each built from one settings field.

:data:`KAFKA_SETTINGS` names the settings that say how to reach Kafka; :func:`kafka_options`
gives a command one flag per name (``kafka_bootstrap`` becomes ``--kafka-bootstrap``), with
the field's description and variable as help, so adding a connection setting to the tuple
adds its flag to every command that talks to Kafka. A flag overrides its ``CHRONOX_*``
variable; a secret's flag says to prefer the variable (a flag shows in the process list).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any, TypeVar, get_args

import click
from pydantic import SecretStr

from chronox_stream.settings import Settings

F = TypeVar("F", bound=Callable[..., Any])

#: The settings fields of the Kafka connection, one flag each on every Kafka command.
KAFKA_SETTINGS: tuple[str, ...] = (
    "kafka_bootstrap",
    "kafka_security_protocol",
    "kafka_sasl_mechanism",
    "kafka_sasl_username",
    "kafka_sasl_password",
    "kafka_ssl_cafile",
    "kafka_ssl_certfile",
    "kafka_ssl_keyfile",
    "kafka_ssl_key_password",
)


def _flag(name: str) -> str:
    return f"--{name.replace('_', '-')}"


def _kinds(name: str) -> tuple[Any, ...]:
    """The types a field holds (``SecretStr | None`` holds both)."""
    annotation = Settings.model_fields[name].annotation
    return get_args(annotation) or (annotation,)


def _help(name: str) -> str:
    field = Settings.model_fields[name]
    secret = SecretStr in _kinds(name)
    note = "; a secret: prefer the variable, a flag shows in the process list" if secret else ""
    return f"{field.description} [CHRONOX_{name.upper()}{note}]"


def setting_option(name: str) -> Callable[[F], F]:
    """A click option overriding the settings field ``name`` (unset: the environment wins)."""
    numbers = [kind for kind in _kinds(name) if kind in (int, float)]
    kind: Any = numbers[0] if numbers else str
    return click.option(_flag(name), name, type=kind, help=_help(name))


def kafka_options(command: F) -> F:
    """Every flag of :data:`KAFKA_SETTINGS`; the command gets them as keyword arguments."""
    for name in reversed(KAFKA_SETTINGS):
        command = setting_option(name)(command)
    return command


def add_setting_arguments(parser: argparse.ArgumentParser, names: tuple[str, ...]) -> None:
    """The same flags for a command parsed by argparse (``chronox ingest``)."""
    for name in names:
        parser.add_argument(_flag(name), dest=name, help=_help(name))


def json_option(command: F) -> F:
    """``--json``: one JSON document on stdout instead of the human text."""
    return click.option(
        "--json", "as_json", is_flag=True, help="Print one JSON document (README: JSON output)."
    )(command)
