"""The flat-file bucket: moto's S3 server on ``sim_s3_port``, kept in step with the plan.

Moto's standalone server runs in a thread of the simulator. Files are
uploaded with boto3 over HTTP (SigV4, the configured access key and secret),
exactly as any client talks to it; moto accepts any credentials, so clients
need no particular key. :meth:`FlatFileBucket.sync` makes the bucket hold the
planned days minus the ``missing_days`` knob: it uploads what is missing and
deletes what should not be there.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from datetime import date
from pathlib import Path
from typing import Any

from chronox_stream.sim.flatfiles import cache_root, ensure_day
from chronox_stream.sim.market import Market


def client_host(host: str) -> str:
    """Where a local client reaches a server bound to ``host`` (any-address binds: loopback)."""
    return "127.0.0.1" if host in ("0.0.0.0", "", "::") else host


class FlatFileBucket:
    def __init__(
        self,
        *,
        host: str,
        port: int,
        bucket: str,
        access_key: str,
        secret_key: str,
        market: Market,
        symbols: Sequence[str],
        data_dir: Path,
    ) -> None:
        # moto and boto3 (about 0.3 s to import) only in a simulator that serves flat files.
        from moto.server import ThreadedMotoServer

        self._server = ThreadedMotoServer(ip_address=host, port=port, verbose=False)
        self._endpoint = f"http://{client_host(host)}:{port}"
        self._bucket = bucket
        self._credentials = (access_key, secret_key)
        self._market = market
        self._symbols = tuple(symbols)
        self._root = cache_root(data_dir, market.seed, self._symbols, market.splits)
        self._uploaded: dict[date, list[str]] = {}
        self._client: Any = None
        self._lock = asyncio.Lock()

    @property
    def endpoint(self) -> str:
        return self._endpoint

    @property
    def days(self) -> list[date]:
        """Days whose files are in the bucket now."""
        return sorted(self._uploaded)

    def start(self) -> None:
        import boto3
        from botocore.config import Config

        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no per-request lines
        self._server.start()
        access_key, secret_key = self._credentials
        self._client = boto3.client(
            "s3",
            endpoint_url=self._endpoint,
            region_name="us-east-1",
            aws_access_key_id=access_key,
            aws_secret_access_key=secret_key,
            config=Config(signature_version="s3v4"),
        )
        self._client.create_bucket(Bucket=self._bucket)

    def stop(self) -> None:
        self._server.stop()

    async def sync(self, planned: Sequence[date], missing: frozenset[date]) -> None:
        """Upload planned days not in the bucket; delete missing or unplanned ones."""
        async with self._lock:
            wanted = [d for d in planned if d not in missing]
            for day in [d for d in self._uploaded if d not in wanted]:
                await asyncio.to_thread(self._delete, self._uploaded.pop(day))
            for day in wanted:
                if day not in self._uploaded:
                    self._uploaded[day] = await asyncio.to_thread(self._upload, day)

    def _upload(self, day: date) -> list[str]:
        files = ensure_day(self._market, self._symbols, day, self._root)
        for key, path in files.items():
            self._client.put_object(Bucket=self._bucket, Key=key, Body=path.read_bytes())
        return list(files)

    def _delete(self, keys: list[str]) -> None:
        for key in keys:
            self._client.delete_object(Bucket=self._bucket, Key=key)
