"""The transport rule for credential-carrying URLs, and URL origins."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aiohttp
import pytest
from pydantic import SecretStr

from chronox_stream.settings import Settings
from chronox_stream.sources.flatfiles import S3FlatFiles
from chronox_stream.sources.polygon_rest import PolygonRest
from chronox_stream.sources.polygon_ws import PolygonStream
from chronox_stream.sources.urls import (
    REST_URL,
    S3_URL,
    WS_URL,
    Origin,
    UnsafeUrl,
    UrlRule,
    check_settings,
    check_transport,
    is_loopback,
    origin,
)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://api.polygon.io", Origin("https", "api.polygon.io", 443)),
        ("HTTPS://API.Polygon.IO:443/v2/aggs?x=1", Origin("https", "api.polygon.io", 443)),
        ("http://127.0.0.1:8765/", Origin("http", "127.0.0.1", 8765)),
        ("wss://socket.polygon.io/stocks", Origin("wss", "socket.polygon.io", 443)),
        ("ws://[::1]/stocks", Origin("ws", "::1", 80)),
        ("https://user:pw@example.com./", Origin("https", "example.com", 443)),
    ],
)
def test_an_origin_is_lower_case_scheme_and_host_with_the_default_port(
    url: str, expected: Origin
) -> None:
    assert origin(url) == expected


@pytest.mark.parametrize(
    "url", ["ftp://example.com/", "/v2/aggs", "http://", "http://h:99999/", "http://[::1"]
)
def test_what_is_not_an_absolute_web_url_has_no_origin(url: str) -> None:
    with pytest.raises(ValueError):
        origin(url)


@pytest.mark.parametrize(
    "host", ["localhost", "LOCALHOST", "127.0.0.1", "127.8.9.10", "::1", "::ffff:127.0.0.1"]
)
def test_loopback_hosts(host: str) -> None:
    assert is_loopback(host)


@pytest.mark.parametrize(
    "host", ["example.com", "10.0.0.1", "0.0.0.0", "::", "localhost.example.com", "128.0.0.1"]
)
def test_other_hosts_are_not_loopback(host: str) -> None:
    assert not is_loopback(host)


@pytest.mark.parametrize(
    ("url", "rule"),
    [
        ("https://api.polygon.io", REST_URL),
        ("http://127.0.0.1:8765", REST_URL),
        ("http://localhost:8765", REST_URL),
        ("wss://socket.polygon.io/stocks", WS_URL),
        ("ws://127.0.0.1:8765/stocks", WS_URL),
        ("ws://[::1]:8765/stocks", WS_URL),
        ("https://files.polygon.io", S3_URL),
        ("http://127.0.0.1:8766", S3_URL),
    ],
)
def test_tls_anywhere_and_plain_text_on_loopback_are_allowed(url: str, rule: UrlRule) -> None:
    assert check_transport(url, rule, allow_insecure=False) == origin(url)


@pytest.mark.parametrize(
    ("url", "rule"),
    [
        ("http://api.example.com/?apiKey=hush", REST_URL),
        ("ws://socket.example.com/stocks?apiKey=hush", WS_URL),
        ("http://hush:hush@10.0.0.5:9000", S3_URL),
    ],
)
def test_plain_text_to_another_machine_is_refused_naming_the_setting_not_the_url(
    url: str, rule: UrlRule
) -> None:
    with pytest.raises(UnsafeUrl) as refused:
        check_transport(url, rule, allow_insecure=False)
    message = str(refused.value)
    assert rule.setting in message
    assert "CHRONOX_ALLOW_INSECURE_URLS" in message
    assert "hush" not in message
    assert check_transport(url, rule, allow_insecure=True) == origin(url)


@pytest.mark.parametrize(
    ("url", "rule"),
    [("wss://socket.polygon.io", REST_URL), ("https://api.polygon.io", WS_URL), ("x", S3_URL)],
)
def test_a_scheme_the_client_does_not_speak_is_refused_even_when_insecure_is_allowed(
    url: str, rule: UrlRule
) -> None:
    with pytest.raises(UnsafeUrl, match=rule.setting):
        check_transport(url, rule, allow_insecure=True)


def remote(**changes: object) -> Settings:
    """Settings of a deployment against Polygon over TLS, with ``changes``."""
    tls: dict[str, object] = {
        "polygon_rest_url": "https://api.polygon.io",
        "polygon_ws_url": "wss://socket.polygon.io/stocks",
        "s3_endpoint_url": "https://files.polygon.io",
        "polygon_api_key": SecretStr("k-123"),
    }
    return Settings().with_overrides(**{**tls, **changes})


def test_the_defaults_and_a_tls_setup_pass_the_start_check() -> None:
    check_settings(Settings())
    check_settings(remote())


@pytest.mark.parametrize(
    ("name", "url"),
    [
        ("polygon_rest_url", "http://api.polygon.io"),
        ("polygon_ws_url", "ws://socket.polygon.io/stocks"),
        ("s3_endpoint_url", "http://files.polygon.io"),
    ],
)
def test_the_start_check_names_the_offending_setting(name: str, url: str) -> None:
    with pytest.raises(UnsafeUrl, match=f"CHRONOX_{name.upper()}"):
        check_settings(remote(**{name: url}))
    check_settings(remote(**{name: url}, allow_insecure_urls=True))


def test_a_plain_text_s3_endpoint_does_not_matter_with_a_local_folder(tmp_path: Path) -> None:
    check_settings(remote(s3_endpoint_url="http://files.polygon.io", flatfiles_dir=tmp_path))


def test_the_s3_store_refuses_a_plain_text_endpoint_on_another_machine() -> None:
    with pytest.raises(UnsafeUrl, match="CHRONOX_S3_ENDPOINT_URL"):
        S3FlatFiles(remote(s3_endpoint_url="http://files.polygon.io"))
    S3FlatFiles(remote(s3_endpoint_url="http://files.polygon.io", allow_insecure_urls=True))


async def test_the_rest_and_websocket_clients_refuse_plain_text_to_another_machine() -> None:
    async with aiohttp.ClientSession() as session:
        with pytest.raises(UnsafeUrl, match="CHRONOX_POLYGON_REST_URL"):
            PolygonRest(session, base_url="http://api.polygon.io", api_key=SecretStr("k"))
        with pytest.raises(UnsafeUrl, match="CHRONOX_POLYGON_WS_URL"):
            PolygonStream(session, url="ws://socket.polygon.io/stocks", api_key="k",
                          on_events=_ignore)  # fmt: skip
        PolygonRest(session, base_url="http://api.polygon.io", api_key=SecretStr("k"),
                    allow_insecure=True)  # fmt: skip
        PolygonStream(session, url="ws://socket.polygon.io/stocks", api_key="k",
                      on_events=_ignore, allow_insecure=True)  # fmt: skip


async def _ignore(events: list[dict[str, Any]]) -> None:
    return None
