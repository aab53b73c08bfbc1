"""Where Polygon flat files come from: an S3-compatible endpoint (aiobotocore) or a folder.

Both use Polygon's key layout, ``us_stocks_sip/{minute,day}_aggs_v1/YYYY/MM/YYYY-MM-DD.csv.gz``.
A missing day is ``None``, not an error: it is a gap for the api phase to fill.
"""

from __future__ import annotations

import asyncio
from contextlib import AsyncExitStack
from datetime import date
from pathlib import Path
from typing import Any, Literal, Protocol

from chronox_stream.settings import Settings
from chronox_stream.sources.urls import S3_URL, check_transport

Kind = Literal["minute_aggs_v1", "day_aggs_v1"]


def flat_file_key(kind: Kind, day: date) -> str:
    return f"us_stocks_sip/{kind}/{day:%Y}/{day:%m}/{day:%Y-%m-%d}.csv.gz"


class FlatFileStore(Protocol):
    async def fetch(self, kind: Kind, day: date) -> bytes | None:
        """The whole compressed file of ``day``, or ``None`` if it does not exist (yet)."""

    async def open(self) -> None:
        """Make the client ready before the first ``fetch`` needs it (it opens it otherwise)."""

    async def close(self) -> None:
        """Release connections; a later ``fetch`` opens them again."""


class LocalFlatFiles:
    """A folder laid out like the bucket (e.g. a mirror made with ``aws s3 sync``)."""

    def __init__(self, root: Path) -> None:
        self._root = root

    async def fetch(self, kind: Kind, day: date) -> bytes | None:
        path = self._root / flat_file_key(kind, day)
        return path.read_bytes() if path.exists() else None

    async def open(self) -> None:
        return None

    async def close(self) -> None:
        return None


class S3FlatFiles:
    """The S3-compatible endpoint, SigV4, credentials from the settings (never logged).

    One client serves every fetch: making a botocore client costs far more than
    fetching a day file. Requests are signed with the S3 keys,
    so an ``http://`` endpoint on another machine is refused at construction
    (``UnsafeUrl``) unless ``allow_insecure_urls`` says otherwise.
    """

    def __init__(self, settings: Settings) -> None:
        check_transport(
            settings.s3_endpoint_url, S3_URL, allow_insecure=settings.allow_insecure_urls
        )
        self._settings = settings
        self._client: Any = None
        self._open = AsyncExitStack()
        self._lock = asyncio.Lock()

    async def _s3(self) -> Any:
        from aiobotocore.session import get_session  # about 0.3 s: only a worker reading S3
        from botocore.config import Config

        async with self._lock:
            if self._client is None:
                s = self._settings
                self._client = await self._open.enter_async_context(
                    get_session().create_client(
                        "s3",
                        endpoint_url=s.s3_endpoint_url,
                        region_name="us-east-1",
                        aws_access_key_id=s.s3_access_key.get_secret_value(),
                        aws_secret_access_key=s.s3_secret_key.get_secret_value(),
                        config=Config(
                            signature_version="s3v4",
                            retries={"max_attempts": 5, "mode": "standard"},
                        ),
                    )
                )
        return self._client

    async def open(self) -> None:
        await self._s3()

    async def fetch(self, kind: Kind, day: date) -> bytes | None:
        from botocore.exceptions import ClientError

        client = await self._s3()
        try:
            response = await client.get_object(
                Bucket=self._settings.s3_bucket, Key=flat_file_key(kind, day)
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                return None
            raise
        async with response["Body"] as body:
            data: bytes = await body.read()
            return data

    async def close(self) -> None:
        async with self._lock:
            await self._open.aclose()
            self._client = None


def flat_file_store(settings: Settings) -> FlatFileStore:
    """A local folder when ``flatfiles_dir`` is set, else the S3 endpoint."""
    if settings.flatfiles_dir is not None:
        return LocalFlatFiles(settings.flatfiles_dir)
    return S3FlatFiles(settings)
