"""The reference client: a bare asyncio loop over aiohttp, with no bookkeeping.

`python _bare_client.py URL PARQUET CONCURRENCY [--api openai|predict] [--batch K] [--uvloop]`

It reads the `text` column, sends every row (or every K rows as a JSON list, with
`--batch`) with CONCURRENCY workers sharing one connection pool, parses each answer and
keeps the one field an evaluation would keep. It retries nothing and writes nothing: it
is the physical limit a Python client can reach on one core, which auditc is held to.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from typing import Any

import aiohttp
import orjson
import pyarrow.parquet as pq


def _bodies(texts: list[str], api: str, batch: int) -> list[bytes]:
    if api == "openai":
        return [
            orjson.dumps(
                {"model": "bench", "messages": [{"role": "user", "content": t}], "max_tokens": 16}
            )
            for t in texts
        ]
    if batch > 1:
        return [
            orjson.dumps([{"text": t} for t in texts[i : i + batch]])
            for i in range(0, len(texts), batch)
        ]
    return [orjson.dumps({"text": t}) for t in texts]


def _keep(api: str, answer: Any) -> Any:
    if api == "openai":
        return answer["choices"][0]["message"]["content"]
    if isinstance(answer, list):
        return [a["score"] for a in answer]
    return answer["score"]


async def _run(url: str, bodies: list[bytes], concurrency: int, api: str) -> list[Any]:
    results: list[Any] = [None] * len(bodies)
    queue = iter(range(len(bodies)))
    headers = {"content-type": "application/json"}
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def worker() -> None:
            for i in queue:
                async with session.post(url, data=bodies[i], headers=headers) as response:
                    results[i] = _keep(api, orjson.loads(await response.read()))

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return results


def main() -> None:
    """Parse arguments, send everything, print `rows seconds` on stdout."""
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("parquet")
    parser.add_argument("concurrency", type=int)
    parser.add_argument("--api", choices=("openai", "predict"), default="openai")
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--uvloop", action="store_true")
    args = parser.parse_args()
    texts = pq.read_table(args.parquet, columns=["text"]).column("text").to_pylist()
    bodies = _bodies(texts, args.api, args.batch)
    start = time.perf_counter()
    if args.uvloop:
        import uvloop

        results = uvloop.run(_run(args.url, bodies, args.concurrency, args.api))
    else:
        results = asyncio.run(_run(args.url, bodies, args.concurrency, args.api))
    elapsed = time.perf_counter() - start
    missing = sum(1 for r in results if r is None)
    if missing:
        sys.exit(f"{missing} requests got no answer")
    sys.stdout.write(f"{len(texts)} {elapsed:.3f}\n")


if __name__ == "__main__":
    main()
