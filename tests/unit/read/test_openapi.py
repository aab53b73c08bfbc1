"""The OpenAPI document of ``chronox serve`` is valid 3.1 and names exactly its routes."""

from __future__ import annotations

import json
from importlib.resources import files

from openapi_spec_validator import validate

from chronox_stream.read.server import build_app
from chronox_stream.settings import Settings


def test_the_document_is_valid_and_covers_every_api_route() -> None:
    doc = json.loads(files("chronox_stream.read").joinpath("openapi.json").read_text())
    validate(doc)
    assert doc["openapi"].startswith("3.1")
    app = build_app(Settings())
    routes = {r.resource.canonical for r in app.router.routes() if r.resource is not None}
    assert {r for r in routes if r.startswith("/v1/")} == set(doc["paths"])
