"""Documented contracts stay true: the README's settings table and the request JSON Schema."""

import json
import re
from importlib.resources import files
from pathlib import Path

import jsonschema
from pydantic import SecretStr

from chronox_stream.contracts.control import FIELDS
from chronox_stream.settings import Settings

ROOT = Path(__file__).resolve().parents[3]
ROW = re.compile(r"^\| `CHRONOX_([A-Z0-9_]+)` \| ([^|]*) \|", re.MULTILINE)


def test_readme_documents_every_setting_with_its_default() -> None:
    documented = dict(ROW.findall((ROOT / "README.md").read_text()))
    fields = Settings.model_fields
    assert set(documented) == {name.upper() for name in fields}
    for name, field in fields.items():
        if not isinstance(field.default, SecretStr):
            assert documented[name.upper()].strip() == f"`{field.default}`", name


def test_request_schema_names_exactly_the_parsed_fields() -> None:
    schema = json.loads(
        files("chronox_stream.contracts").joinpath("schemas/backfill-request.json").read_text()
    )
    jsonschema.Draft202012Validator.check_schema(schema)
    assert set(schema["properties"]) == set(FIELDS)
    jsonschema.validate({"request_id": "r1", "symbols": ["AAPL", "BRK.B"]}, schema)
