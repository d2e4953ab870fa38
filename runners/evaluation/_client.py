"""The evaluation client: every row of a dataset shard through a service, into Parquet parts.

Stage: runner. Takes an `EvaluationConfig`, returns an `EvaluationResult`.

The hot path is kept to a few Python operations per row, because a Python client's
throughput is bound by its own CPU time per request (reference/performance.md):

- rows are read in Arrow record batches and mapped to request bodies with adapters
  compiled once; each body is serialised once (orjson) and reused for replications;
- `concurrency` worker coroutines share one aiohttp `ClientSession` whose connector
  holds `concurrency` connections; with `concurrency: auto`, `max` workers take a slot
  of an `InFlightGate` around each request, whose limit an `AdaptiveController` moves;
- results are appended as tuples; Parquet parts are built and written in a thread;
- progress, the total timeout and time-based flushes run in one ticker task.
"""

from __future__ import annotations

import asyncio
import email.utils
import functools
import logging
import os
import random
import signal
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, Literal

import orjson

from schemas import (
    INDEX_COLUMN,
    EvaluationError,
    Store,
    evaluation_output_schema,
)

from ..adapters import AdapterError, compile_pipeline
from ..fingerprint import FingerprintError, fingerprint_spec, take_fingerprint
from ._adaptive import AdaptiveController, AdaptiveSettings, concurrency_plan
from ._config import EvaluationConfig, EvaluationResult
from ._gate import InFlightGate
from ._io import (
    Committed,
    PartWriter,
    count_shard_rows,
    read_committed,
    remove_stale_temporaries,
    shard_batches,
)
from ._progress import Reporter, make_reporter
from ._ready import wait_for_service
from ._redact import REDACTED, redact

__all__ = ["read_api_key", "run_evaluation", "run_evaluation_async"]

logger = logging.getLogger("runners.evaluation")

TICK_S = 0.25
"""How often progress, the total timeout and time-based flushes are checked."""
MAX_LOGGED_ROW_ERRORS = 10
"""Row errors logged one by one; later ones only count."""
_MAX_ERROR_TEXT = 300

Unit = tuple[list[tuple[int, int]], bytes | list[bytes] | None, tuple[str, str] | None]
"""One request: its (`_index_`, `_replication_`) keys, its body (the rows' bodies when
batched), or the error that prevents it."""
Outcome = tuple[Any, str | None, str]
"""(parsed response, error type or None, error message)."""
Exchange = tuple[int, bytes, str | None, tuple[str, str] | None]
"""One HTTP exchange: (status, body, Retry-After, or the (kind, message) of a failure)."""

_NOT_SPLIT = frozenset({"connect", "timeout", "http-429", "http-502", "http-503", "http-504"})
"""Failures of a batched request that say nothing about its rows: the batch is not split."""


def _short(text: str) -> str:
    return text if len(text) <= _MAX_ERROR_TEXT else text[: _MAX_ERROR_TEXT - 1] + "…"


def _error_text(raw: bytes) -> str:
    """The message of an error response: its `error` field when it is JSON, else its text."""
    try:
        parsed = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return _short(raw.decode(errors="replace").strip())
    if isinstance(parsed, dict) and "error" in parsed:
        error = parsed["error"]
        return _short(error if isinstance(error, str) else orjson.dumps(error).decode())
    return _short(raw.decode(errors="replace").strip())


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a `Retry-After` header (delta seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(when.timestamp() - (time.time() if now is None else now), 0.0)


def read_api_key(name: str | None) -> str | None:
    """The API key held by the environment variable `name` (None when no variable is named).

    Raises:
        EvaluationError: the variable is named but not set or empty.
    """
    if name is None:
        return None
    key = os.environ.get(name)
    if not key:
        raise EvaluationError(
            f"environment variable {name} (api_key_env) is not set or empty; "
            "it must hold the service's API key"
        )
    return key


def json_headers(api_key: str | None) -> dict[str, str]:
    """Request headers: JSON, and the bearer token when there is an API key."""
    headers = {"Content-Type": "application/json", "Accept": "application/json"}
    if api_key is not None:
        headers["Authorization"] = f"Bearer {api_key}"
    return headers


class _Client:
    """One run of one shard. Counters are plain ints touched only by the event loop."""

    deadline: float
    last_flush: float
    stopped: asyncio.Event
    write_lock: asyncio.Lock
    writer: PartWriter

    def __init__(self, config: EvaluationConfig) -> None:
        spec = config.evaluation.spec
        interface = config.service.spec.interface
        if spec.batch_size > 1 and not interface.batching:
            raise EvaluationError(
                f"Evaluation/{config.evaluation.name}: batch_size is {spec.batch_size} but "
                f"InferenceService/{config.service.name} does not set interface.batching"
            )
        self.config = config
        self.spec = spec
        self.title = f"Evaluation/{config.evaluation.name}" + (
            f" shard {config.shard_index}/{config.shard_count}" if config.shard_count > 1 else ""
        )
        self.url = config.base_url.rstrip("/") + interface.endpoint
        api_key = read_api_key(config.api_key_env)
        self.headers = json_headers(api_key)
        self.secret = api_key
        self.secret_bytes = api_key.encode() if api_key else None
        plan = concurrency_plan(config.evaluation, config.service, config.concurrency_cap)
        self.adaptive = plan if isinstance(plan, AdaptiveSettings) else None
        self.workers = plan.maximum if isinstance(plan, AdaptiveSettings) else plan
        self.fixed_level = plan if isinstance(plan, int) else None
        self.controller: AdaptiveController | None = None
        self.gate: InFlightGate | None = None
        self.max_response_bytes = spec.max_response_bytes
        self.request_one = compile_pipeline(interface.request, name="interface.request").one
        self.response_one = compile_pipeline(interface.response, name="interface.response").one
        self.columns = tuple(interface.output)
        self.blank = (None,) * len(self.columns)
        self.schema = evaluation_output_schema(dict(interface.output))
        self.batched = spec.batch_size > 1
        self.request_timeout = spec.timeouts.request
        self.max_attempts = spec.retries.max_attempts
        self.backoff_initial = spec.retries.backoff_initial
        self.backoff_max = spec.retries.backoff_max
        self.abort = spec.errors.on_error == "abort"
        # Counters of this run.
        self.requests = 0
        self.retries = 0
        self.done = 0
        self.errors = 0
        self.written = 0
        self.first_send = 0.0
        self.last_answer = 0.0
        # Run state, set up in run().
        self.rows: list[tuple[Any, ...]] = []
        self.produced = False
        """The producer has queued every unit."""
        self.split_logged = False
        self.writes: set[asyncio.Task[None]] = set()
        self.stop_reason: str | None = None
        self.fatal: BaseException | None = None
        self.fingerprint: str | None = None

    # ------------------------------------------------------------- set-up

    def _prepare_store(self) -> tuple[Store, Store, Committed, int]:
        """Open the stores, read what is committed, count the shard's rows (blocking I/O)."""
        config = self.config
        dataset = Store.open(config.dataset_uri, create=False)
        dataset.verify_node("")  # never read a dataset whose files are not its manifest's
        output = Store.open(config.output_uri)
        remove_stale_temporaries(output, config.shard_index)
        committed = read_committed(output, config.shard_index)
        total = count_shard_rows(dataset, config.shard_index, config.shard_count)
        return dataset, output, committed, total

    def _units(self, dataset: Store, committed: Committed) -> Iterator[list[Unit]]:
        """Requests to send, one list per Arrow record batch (runs in a worker thread)."""
        replications = range(self.spec.replications)
        resuming = bool(committed.done)
        pending: list[tuple[tuple[int, int], bytes]] = []
        size = self.spec.batch_size
        request_one, dumps = self.request_one, orjson.dumps
        for rows in shard_batches(dataset, self.config.shard_index, self.config.shard_count):
            units: list[Unit] = []
            for row in rows:
                index = row[INDEX_COLUMN]
                todo = (
                    [r for r in replications if not committed.holds(index, r)]
                    if resuming
                    else replications
                )
                if not todo:
                    continue
                try:
                    # orjson's bytes keep a 4 KiB buffer: copied to their size, the bodies
                    # waiting in the queue cost ~300 bytes each instead of 4 KiB.
                    body = bytes(memoryview(dumps(request_one(row))))
                except AdapterError as exc:
                    units.append(([(index, r) for r in todo], None, ("adapter", str(exc))))
                    continue
                except orjson.JSONEncodeError as exc:
                    message = f"the request is not JSON-serializable: {exc}"
                    units.append(([(index, r) for r in todo], None, ("adapter", message)))
                    continue
                if not self.batched:
                    units.extend(([(index, r)], body, None) for r in todo)
                    continue
                pending.extend(((index, r), body) for r in todo)
                while len(pending) >= size:
                    units.append(self._batch_unit(pending[:size]))
                    del pending[:size]
            yield units
        if pending:
            yield [self._batch_unit(pending)]

    @staticmethod
    def _batch_unit(items: list[tuple[tuple[int, int], bytes]]) -> Unit:
        return [key for key, _ in items], [body for _, body in items], None

    # ------------------------------------------------------------- sending

    async def _post(self, session: Any, body: bytes, rows: int = 1) -> Outcome:
        """POST with retries of connection errors, timeouts, 429 and 5xx.

        A request of several rows is not retried on an HTTP 500 (or 501, 505…): one bad row
        may cause it, so the caller splits the request instead.
        """
        attempt = 0
        limit = self.max_response_bytes * rows
        while True:
            attempt += 1
            status, raw, retry_after, failure = await self._exchange(session, body, limit)
            if failure is not None:
                kind, message = failure
                if kind == "too-large":
                    return None, kind, message
            else:
                if status < 300:
                    try:
                        return orjson.loads(raw), None, ""
                    except orjson.JSONDecodeError as exc:
                        return None, "bad-json", f"the response is not JSON ({exc}): {raw[:80]!r}"
                kind, message = f"http-{status}", f"HTTP {status}: {_error_text(raw)}"
                if not _transient(status, rows):
                    return None, kind, message
            if attempt >= self.max_attempts:
                return None, kind, f"{message} (after {attempt} attempts)"
            delay = self._backoff(attempt, retry_after)
            if time.monotonic() + delay > self.deadline:
                return None, kind, f"{message} (no time left to retry before timeouts.total)"
            self.retries += 1
            await asyncio.sleep(delay)

    async def _exchange(self, session: Any, body: bytes, limit: int) -> Exchange:
        """One request and its answer, through the gate of `concurrency: auto` if there is one."""
        import aiohttp

        gate, controller = self.gate, self.controller
        if gate is not None:
            await gate.acquire()
        epoch = controller.epoch if controller is not None else 0
        self.requests += 1
        sent = time.monotonic()
        if not self.first_send:
            self.first_send = sent
        status, raw, retry_after, failure = 0, b"", None, None
        try:
            async with session.post(self.url, data=body) as response:
                status = response.status
                read = await _read_at_most(response, limit)
                if status == 429 or status == 503:
                    retry_after = response.headers.get("Retry-After")
        except TimeoutError:
            failure = ("timeout", f"no response within {self.request_timeout:g} s")
        except aiohttp.ClientError as exc:
            failure = (
                "connect",
                f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__,
            )
        else:
            if read is None:
                failure = (
                    "too-large",
                    f"HTTP {status}: the response is larger than max_response_bytes allows "
                    f"({limit:,} bytes for {limit // self.max_response_bytes} row(s)); "
                    "it was not read",
                )
            else:
                raw = read
                secret = self.secret_bytes
                if secret is not None and secret in raw:
                    raw = raw.replace(secret, REDACTED.encode())
        finally:
            if gate is not None:
                gate.release()
        now = time.monotonic()
        if failure is None or failure[0] == "too-large":
            self.last_answer = now
        if controller is not None:
            self._observe(controller, epoch, now - sent, now, status, failure)
        return status, raw, retry_after, failure

    def _observe(
        self,
        controller: AdaptiveController,
        epoch: int,
        latency: float,
        now: float,
        status: int,
        failure: tuple[str, str] | None,
    ) -> None:
        """Tell the controller how a request ended; apply the level it decides."""
        if failure is not None and failure[0] != "too-large":
            changed = failure[0] == "timeout" and controller.congested(epoch, now, "a timeout")
        elif status == 429 or status == 503:
            changed = controller.congested(epoch, now, f"HTTP {status}")
        else:
            changed = controller.answered(epoch, latency, now)
        if changed:
            assert self.gate is not None
            self.gate.set_limit(controller.level, controller.increase_over_s)

    def _backoff(self, attempt: int, retry_after: str | None) -> float:
        """Seconds before the next attempt: the server's Retry-After, else jittered exponential."""
        told = parse_retry_after(retry_after)
        if told is not None:
            return told
        ceiling = min(self.backoff_max, self.backoff_initial * 2 ** (attempt - 1))
        # Jitter spreads out the retries of rows that failed together.
        return random.uniform(ceiling / 2, ceiling)

    # ------------------------------------------------------------- results

    def _record(self, key: tuple[int, int], output: Any) -> None:
        try:
            row = self.response_one(output)
        except AdapterError as exc:
            self._record_error(key, "adapter", str(exc))
            return
        self.rows.append((key[0], key[1], *[row.get(c) for c in self.columns], None, None))
        self.done += 1

    def _record_error(self, key: tuple[int, int], kind: str, message: str) -> None:
        message = redact(message, self.secret)
        if self.abort:
            self._stop(
                f"row _index_={key[0]} _replication_={key[1]} failed ({kind}: {message}) "
                "and errors.on_error is 'abort'"
            )
            return
        self.rows.append((key[0], key[1], *self.blank, message, kind))
        self.done += 1
        self.errors += 1
        if self.errors <= MAX_LOGGED_ROW_ERRORS:
            logger.warning(
                "row _index_=%s _replication_=%s failed: %s: %s", key[0], key[1], kind, message
            )
            if self.errors == MAX_LOGGED_ROW_ERRORS:
                logger.warning("further row errors are recorded but not logged")

    async def _handle(self, session: Any, unit: Unit) -> None:
        keys, body, error = unit
        if error is not None:
            for key in keys:
                self._record_error(key, *error)
        elif isinstance(body, bytes):
            output, kind, message = await self._post(session, body)
            if kind is not None:
                self._record_error(keys[0], kind, message)
            else:
                self._record(keys[0], output)
        else:
            assert body is not None
            await self._send_batch(session, keys, body)
        if len(self.rows) >= self.config.part_rows:
            await asyncio.shield(self._flush())

    async def _send_batch(
        self, session: Any, keys: list[tuple[int, int]], bodies: list[bytes]
    ) -> None:
        """Send rows as one request; when it fails in a way one row can cause, send each half.

        Halving finds the failing rows in a few requests, so one bad row costs only its own
        result, not those of the rows batched with it.
        """
        # The bodies are already JSON: join them instead of serialising the list again.
        output, kind, message = await self._post(
            session, b"[" + b",".join(bodies) + b"]", len(keys)
        )
        if kind is None:
            if isinstance(output, list) and len(output) == len(keys):
                for key, item in zip(keys, output, strict=True):
                    self._record(key, item)
                return
            found = (
                f"a list of {len(output)}" if isinstance(output, list) else type(output).__name__
            )
            kind, message = (
                "bad-response",
                f"expected a JSON list of {len(keys)} results, got {found}",
            )
        if len(keys) > 1 and kind not in _NOT_SPLIT and self.stop_reason is None:
            if not self.split_logged:
                self.split_logged = True
                logger.info(
                    "%s: a request of %d rows failed (%s); sending its halves separately to "
                    "find the rows that fail (logged once)",
                    self.title,
                    len(keys),
                    kind,
                )
            half = len(keys) // 2
            await self._send_batch(session, keys[:half], bodies[:half])
            await self._send_batch(session, keys[half:], bodies[half:])
            return
        for key in keys:
            self._record_error(key, kind, message)

    def _flush(self) -> asyncio.Task[None]:
        """Hand the buffered rows to the writer; parts are written one at a time, in order."""
        rows, self.rows = self.rows, []
        self.last_flush = time.monotonic()
        task = asyncio.ensure_future(self._write(rows))
        self.writes.add(task)
        task.add_done_callback(self.writes.discard)
        return task

    async def _write(self, rows: list[tuple[Any, ...]]) -> None:
        if not rows:
            return
        async with self.write_lock:
            schema_errors = await asyncio.to_thread(self.writer.write, rows)
        self.written += len(rows)
        self.errors += schema_errors

    # ------------------------------------------------------------- control

    def _stop(self, reason: str) -> None:
        reason = redact(reason, self.secret)
        if self.stop_reason is None:
            self.stop_reason = reason
        self.stopped.set()

    async def _produce(
        self, queue: asyncio.Queue[Unit | None], units: Iterator[list[Unit]], workers: int
    ) -> None:
        try:
            while True:
                chunk = await asyncio.to_thread(next, units, None)
                if chunk is None:
                    break
                for unit in chunk:
                    await queue.put(unit)
        except Exception as exc:  # a store or data error: stop the run and re-raise it later
            self.fatal = exc
            self.stopped.set()
            return
        self.produced = True
        for _ in range(workers):
            await queue.put(None)

    async def _work(self, session: Any, queue: asyncio.Queue[Unit | None]) -> None:
        handle = self._handle
        try:
            while (unit := await queue.get()) is not None and self.stop_reason is None:
                await handle(session, unit)
        except Exception as exc:  # a part could not be written: stop the run, re-raise it later
            self.fatal = exc
            self.stopped.set()

    async def _tick(self, reporter: Reporter, queue: asyncio.Queue[Unit | None]) -> None:
        interval = self.config.flush_interval_s
        controller = self.controller
        while True:
            await asyncio.sleep(TICK_S)
            now = time.monotonic()
            reporter.update(self.done, self.errors)
            if controller is not None and self._tail(queue, controller):
                # Too few rows left to fill the level: the tail says nothing about the server.
                controller.freeze(now, "the last rows are being sent")
            if now >= self.deadline:
                self._stop(
                    f"the evaluation ran past timeouts.total ({self.spec.timeouts.total:g} s); "
                    "the rows done so far are written: run it again to resume"
                )
            if self.rows and now - self.last_flush >= interval:
                self._flush()

    def _tail(self, queue: asyncio.Queue[Unit | None], controller: AdaptiveController) -> bool:
        """Whether the rows left to send can no longer fill the controller's level."""
        waiting = self.gate.waiting if self.gate is not None else 0
        return self.produced and queue.qsize() + waiting < controller.level

    def _take_fingerprint(self) -> str | None:
        """The service's fingerprint now, for the manifest; None if it has none or cannot say.

        Never fails the run: a service that cannot be fingerprinted can still be evaluated.
        """
        service = self.config.service
        declared = service.spec.runner.kind == "external" and bool(service.spec.runner.fingerprint)
        if fingerprint_spec(service) is None:
            return None
        try:
            value = take_fingerprint(service, self.config.base_url, self.secret)
        except FingerprintError as exc:
            # Only a declared fingerprint is worth a warning; the default one is a guess.
            logger.log(
                logging.WARNING if declared else logging.INFO,
                "%s; the manifest records no fingerprint",
                redact(str(exc), self.secret),
            )
            return None
        logger.info("InferenceService/%s answers with fingerprint %s", service.name, value)
        return value

    # ------------------------------------------------------------- run

    async def run(self) -> EvaluationResult:
        start = time.monotonic()
        self.deadline = start + self.spec.timeouts.total
        self.stopped = asyncio.Event()
        self.write_lock = asyncio.Lock()
        self.last_flush = start
        dataset, output, committed, shard_rows = await asyncio.to_thread(self._prepare_store)
        if self.config.ready_url is not None:
            # After the store checks, so a missing dataset fails before a long model load.
            timeout = self.spec.timeouts.ready_s(self.config.service.spec.runner.kind)
            await asyncio.to_thread(
                functools.partial(
                    wait_for_service,
                    self.config.ready_url,
                    timeout,
                    any_status=self.config.ready_any_status,
                )
            )
        self.fingerprint = await asyncio.to_thread(self._take_fingerprint)
        self.writer = PartWriter(output, self.schema, self.config.shard_index, committed.next_seq)
        total = max(shard_rows * self.spec.replications - committed.rows, 0)
        if committed.rows:
            logger.info("%s: resuming: %d rows already written", self.title, committed.rows)
        reporter = make_reporter(self.title, total, self.config.progress)
        try:
            await self._send_all(self._units(dataset, committed), reporter)
        finally:
            reporter.update(self.done, self.errors)
            reporter.close()
        return self._result(committed, start)

    async def _send_all(self, units: Iterator[list[Unit]], reporter: Reporter) -> None:
        import aiohttp

        concurrency = self.workers
        if self.adaptive is not None:
            self.controller = AdaptiveController(self.adaptive, now=time.monotonic())
            self.gate = InFlightGate(self.adaptive.start)
            logger.info(
                "%s: concurrency auto, from %d between %d and %d requests in flight",
                self.title,
                self.adaptive.start,
                self.adaptive.minimum,
                self.adaptive.maximum,
            )
        queue: asyncio.Queue[Unit | None] = asyncio.Queue(maxsize=concurrency * 4)
        connector = aiohttp.TCPConnector(limit=concurrency, limit_per_host=0)
        timeout = aiohttp.ClientTimeout(total=self.request_timeout)
        async with aiohttp.ClientSession(
            connector=connector, timeout=timeout, headers=self.headers, raise_for_status=False
        ) as session:
            stop_signals = self._stop_on_signals()
            producer = asyncio.create_task(self._produce(queue, units, concurrency))
            workers = [asyncio.create_task(self._work(session, queue)) for _ in range(concurrency)]
            ticker = asyncio.create_task(self._tick(reporter, queue))
            everything = asyncio.gather(*workers)
            stopped = asyncio.create_task(self.stopped.wait())
            try:
                waiting: set[asyncio.Future[Any]] = {everything, stopped}
                await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for task in (producer, ticker, stopped, *workers):
                    task.cancel()
                await asyncio.gather(producer, ticker, stopped, everything, return_exceptions=True)
                await asyncio.gather(*self.writes)
                await self._flush()
                if self.gate is not None:
                    self.gate.close()
                loop = asyncio.get_running_loop()
                for signum in stop_signals:
                    loop.remove_signal_handler(signum)
        if self.fatal is not None:
            raise self.fatal

    def _stop_on_signals(self) -> list[int]:
        """On SIGTERM or SIGINT, stop sending and commit the rows already answered.

        The backend stops a run with SIGTERM (Ctrl-C sends SIGINT to the whole process
        group); without this, answered rows still in memory would be lost and re-sent.
        Only the main thread can own signal handlers, so elsewhere this does nothing.
        """
        if threading.current_thread() is not threading.main_thread():
            return []
        loop = asyncio.get_running_loop()
        installed: list[int] = []
        for signum in (signal.SIGTERM, signal.SIGINT):
            try:
                loop.add_signal_handler(signum, self._interrupted, signal.Signals(signum).name)
            except (NotImplementedError, RuntimeError, ValueError):  # no handlers on this loop/OS
                continue
            installed.append(signum)
        return installed

    def _interrupted(self, name: str) -> None:
        self._stop(
            f"interrupted by {name}; the rows answered so far are written: run it again to resume"
        )

    def _final_concurrency(self) -> int:
        """The level at the end of the run (auto: logged with where it settled)."""
        controller = self.controller
        if controller is None:
            return self.fixed_level or self.workers
        logger.info(
            "%s: concurrency auto ended at %d requests in flight (%s; %d changes)",
            self.title,
            controller.level,
            f"settled at {controller.settled}"
            if controller.settled is not None
            else "still ramping up when the rows ran out",
            len(controller.history),
        )
        return controller.level

    def _result(self, committed: Committed, start: float) -> EvaluationResult:
        rows = committed.rows + self.written
        errors = committed.errors + self.errors
        status: Literal["complete", "failed"] = "complete"
        message: str | None = None
        fraction = self.spec.errors.max_error_fraction
        if self.stop_reason is not None:
            status, message = "failed", self.stop_reason
        elif rows and errors / rows > fraction:
            status = "failed"
            message = (
                f"{errors} of {rows} rows ({errors / rows:.1%}) failed, more than "
                f"errors.max_error_fraction ({fraction:g}); every row is written"
            )
        in_flight = self.last_answer - self.first_send if self.first_send else 0.0
        return EvaluationResult(
            concurrency=self._final_concurrency(),
            service_fingerprint=self.fingerprint,
            rows=rows,
            errors=errors,
            requests=self.requests,
            retries=self.retries,
            resumed_rows=committed.rows,
            duration_s=round(time.monotonic() - start, 6),
            in_flight_s=round(max(in_flight, 0.0), 6),
            status=status,
            message=message,
        )


def _transient(status: int, rows: int) -> bool:
    """Whether an HTTP error status is worth sending the same request again."""
    if status == 429 or status in (502, 503, 504):
        return True
    return status >= 500 and rows == 1  # a batch that fails with a 500 is split instead


async def _read_at_most(response: Any, limit: int) -> bytes | None:
    """The response body, or None (the connection closed) when it is larger than `limit`.

    With a Content-Length (and no Content-Encoding, which could inflate it) the length is
    checked before reading; otherwise the body is read chunk by chunk up to the limit, so
    a server streaming gigabytes costs at most `limit` bytes of memory.
    """
    length = response.content_length
    if length is not None and "Content-Encoding" not in response.headers:
        if length > limit:
            response.close()
            return None
        body: bytes = await response.read()
        return body
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.content.iter_any():
        size += len(chunk)
        if size > limit:
            response.close()
            return None
        chunks.append(chunk)
    return b"".join(chunks)


async def run_evaluation_async(config: EvaluationConfig) -> EvaluationResult:
    """Run one shard of an evaluation in the current event loop.

    Args:
        config: What to evaluate and where to write it.

    Returns:
        The counts and status. A run whose rows errored, or that stopped for
        `errors.on_error: abort` or `timeouts.total`, returns status `failed` with a message.

    Raises:
        EvaluationError: the config cannot run (batching, missing API key).
        StoreError: the dataset or the output node cannot be read or written.
        AdapterError: a request or response template cannot be parsed.
    """
    return await _Client(config).run()


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    try:
        import uvloop
    except ImportError:  # uvloop is an optimisation (and not on Windows)
        return None
    factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
    return factory


def run_evaluation(config: EvaluationConfig) -> EvaluationResult:
    """Run one shard of an evaluation to the end (blocking); see `run_evaluation_async`.

    Example:
        >>> result = run_evaluation(config)  # doctest: +SKIP
        >>> result.status, result.rows, result.errors  # doctest: +SKIP
        ('complete', 5000, 0)
    """
    with asyncio.Runner(loop_factory=_loop_factory()) as runner:
        return runner.run(run_evaluation_async(config))
