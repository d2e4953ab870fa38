"""Helpers for evaluation tests: real aiohttp servers in a thread, datasets, configs."""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
from aiohttp import web

from runners.evaluation import EvaluationConfig

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class ThreadServer:
    """An aiohttp server on 127.0.0.1 (a free port), running in its own thread and loop."""

    def __init__(
        self, handler: Handler, path: str = "/predict", get: dict[str, Handler] | None = None
    ) -> None:
        self.handler = handler
        self.path = path
        self.get = get or {}
        self.requests = 0
        self.seen: Counter[Any] = Counter()
        self._started = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.port = 0

    async def _count(self, request: web.Request) -> web.StreamResponse:
        self.requests += 1
        return await self.handler(request)

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        app = web.Application()
        app.router.add_post(self.path, self._count)
        for route, get_handler in self.get.items():
            app.router.add_get(route, get_handler)
        runner = web.AppRunner(app, access_log=None)
        loop.run_until_complete(runner.setup())
        site = web.TCPSite(runner, "127.0.0.1", 0)
        loop.run_until_complete(site.start())
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self._started.set()
        loop.run_forever()
        loop.run_until_complete(runner.cleanup())
        loop.close()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> ThreadServer:
        self._thread.start()
        assert self._started.wait(10), "the test server did not start"
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._loop is not None
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)


def json_response(
    value: Any, status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    return web.Response(
        body=orjson.dumps(value), status=status, content_type="application/json", headers=headers
    )


async def echo(request: web.Request) -> web.Response:
    """Answers {"i": n} with {"score": n / 2, "label": "row-n"}; lists item by item."""
    payload = orjson.loads(await request.read())

    def one(item: dict[str, Any]) -> dict[str, Any]:
        return {"score": item["i"] / 2, "label": f"row-{item['i']}"}

    return json_response([one(p) for p in payload] if isinstance(payload, list) else one(payload))


def write_dataset(directory: Path, n: int, parts: int = 1, **columns: list[Any]) -> Path:
    """A stored Dataset node: `_index_` 0..n-1 (as 1000 + i when asked), `text`, extra columns."""
    directory.mkdir(parents=True, exist_ok=True)
    data = {"_index_": list(range(n)), "text": [f"text {i}" for i in range(n)], **columns}
    table = pa.table(data).cast(
        pa.table(data).schema.set(0, pa.field("_index_", pa.int64(), nullable=False))
    )
    step = -(-n // parts)
    for part in range(parts):
        pq.write_table(table.slice(part * step, step), directory / f"part-{part:06d}.parquet")
    return directory


def service(output: dict[str, str] | None = None, **interface: Any) -> dict[str, Any]:
    return {
        "kind": "InferenceService",
        "name": "svc",
        "spec": {
            "runner": {"kind": "external", "url": "http://127.0.0.1:1"},
            "interface": {
                "request": {"i": "$._index_"},
                "output": output or {"score": "float64", "label": "string"},
                **interface,
            },
        },
    }


def config(
    base_url: str,
    dataset: Path,
    output: Path,
    *,
    service_spec: dict[str, Any] | None = None,
    **spec: Any,
) -> EvaluationConfig:
    extra = {k: spec.pop(k) for k in list(spec) if k in EvaluationConfig.model_fields}
    return EvaluationConfig.model_validate(
        {
            "evaluation": {
                "kind": "Evaluation",
                "name": "ev",
                "spec": {"service": "svc", "dataset": "d", **spec},
            },
            "service": service_spec or service(),
            "base_url": base_url,
            "dataset_uri": str(dataset),
            "output_uri": str(output),
            "progress": False,
            **extra,
        }
    )


def read_output(directory: Path) -> list[dict[str, Any]]:
    """Every output row, sorted by (`_index_`, `_replication_`)."""
    files = sorted(p for p in directory.glob("part-*.parquet"))
    rows = [row for f in files for row in pq.read_table(f).to_pylist()]
    return sorted(rows, key=lambda r: (r["_index_"], r["_replication_"]))


def assert_exactly_once(
    rows: list[dict[str, Any]], indexes: range | list[int], replications: int = 1
) -> None:
    keys = [(r["_index_"], r["_replication_"]) for r in rows]
    assert len(keys) == len(set(keys)), "some (_index_, _replication_) is written twice"
    assert sorted(keys) == [(i, r) for i in indexes for r in range(replications)]
