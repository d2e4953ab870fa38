"""One writer per store: the lock `auditc run` holds while it writes to a store.

Two runs writing one store would both run the same nodes, and one would delete a node
directory the other is writing (a re-run starts from an empty directory). So a run that
has something to write takes the store's writer lock first, and a second writer is
refused with a message that says who holds it. Readers (`plan`, `check`, `report`,
`diff`) never take it: a manifest is written last and atomically, so they see complete
nodes or none.

- **Local stores**: `<store>/.writer.lock`, locked with `flock(2)`. The run's process
  launcher and the steps it forks share the locked descriptor, so the lock lasts until
  the last process of the run that may write has exited: if `auditc` is killed, a new
  run cannot start while the old evaluation client is still committing its rows. The
  kernel releases it when they are gone, however they end (SIGKILL, a crash). The
  file says who holds it (pid, host, command, since); after a crash it still names the
  last holder, but the next writer takes the lock and rewrites it. A writer that finds
  the lock held by a run whose `auditc` has exited waits up to `STOPPED_RUN_WAIT_S` for
  that run's processes to stop. On NFS, Linux maps flock to the server's POSIX locks.
- **Object stores** (`s3://`, `gs://`): no atomic create-if-absent is available through
  pyarrow, so the lock is a *lease*: `<store>/.writer-lease.json` with an expiry,
  renewed every `LEASE_RENEW_S` seconds while the run lasts and deleted at its end. A
  writer that finds another's unexpired lease refuses; one that finds an expired lease
  (its holder crashed) takes it. A writer writes its lease, waits `LEASE_SETTLE_S`,
  and reads it back, so of two writers starting at the same moment the one whose lease
  was overwritten steps back; writers that start within a few milliseconds of each
  other on a store with eventual consistency could still both proceed — the lease is
  advisory, as every lock built on plain object writes is.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import shlex
import socket
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import IO

from pydantic import BaseModel, ConfigDict, ValidationError

from schemas import Store, StoreError

__all__ = [
    "STOPPED_RUN_WAIT_S",
    "LEASE_FILE",
    "LEASE_RENEW_S",
    "LEASE_TTL_S",
    "LOCK_FILE",
    "StoreLock",
    "StoreWriter",
    "store_writer_lock",
]

logger = logging.getLogger(__name__)

LOCK_FILE = ".writer.lock"
LEASE_FILE = ".writer-lease.json"
LEASE_TTL_S = 90.0
"""How long an object store's lease lasts without renewal (its holder may have crashed)."""
LEASE_RENEW_S = 20.0
LEASE_SETTLE_S = 0.5
"""Pause between writing a lease and reading it back."""
STORE_IN_USE = "store-in-use"
"""The error code of a refused writer."""
STOPPED_RUN_WAIT_S = 30.0
"""How long a writer waits for the processes of a run whose `auditc` exited (they stop
within the launcher's grace period, 5 s, unless they ignore SIGTERM and SIGKILL)."""


@dataclass(frozen=True)
class StoreLock:
    """A held writer lock."""

    holder: StoreWriter
    fds: tuple[int, ...] = ()
    """Descriptors that hold the lock: processes that inherit them hold it too."""


class StoreWriter(BaseModel):
    """Who holds a store's writer lock (the content of the lock file or lease)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    pid: int
    host: str
    command: str
    since: datetime
    expires: datetime | None = None
    """Object stores only: when the lease lapses unless its holder renews it."""
    token: str = ""
    """Tells this holder's lease from another's."""

    def describe(self) -> str:
        """`auditc run audits/ (pid 1234 on host h), running since … (3 min ago)`."""
        age = datetime.now(UTC) - self.since
        return (
            f"`{self.command}` (pid {self.pid} on host {self.host}), running since "
            f"{self.since:%Y-%m-%d %H:%M:%S} UTC ({_duration(age)} ago)"
        )


@contextlib.contextmanager
def store_writer_lock(store: Store, argv: Sequence[str] | None = None) -> Iterator[StoreLock]:
    """Hold the store's writer lock for the duration of a `with` block.

    Args:
        store: The store about to be written.
        argv: The command line to record (default: this process's), without URL secrets.

    Raises:
        StoreError: another writer holds the lock (code `store-in-use`; the message
            names it), or the lock cannot be written.
    """
    me = StoreWriter(
        pid=os.getpid(),
        host=socket.gethostname(),
        command=_command(sys.argv if argv is None else argv),
        since=datetime.now(UTC).replace(microsecond=0),
        token=os.urandom(8).hex(),
    )
    if store.is_local:
        with _local_lock(store, me) as fd:
            yield StoreLock(me, (fd,))
    else:
        with _lease(store, me):
            yield StoreLock(me)


# ------------------------------------------------------------------ local stores


@contextlib.contextmanager
def _local_lock(store: Store, me: StoreWriter) -> Iterator[int]:
    import fcntl

    path = store.path(LOCK_FILE)
    try:
        handle: IO[str] = open(path, "a+", encoding="utf-8")  # noqa: SIM115 - held open below
    except OSError as exc:
        raise StoreError(f"cannot create the writer lock {path}: {exc}") from exc
    with handle:
        _take(store, handle, path)
        try:
            handle.seek(0)
            handle.truncate()
            handle.write(me.model_dump_json() + "\n")
            handle.flush()
            yield handle.fileno()
        finally:
            with contextlib.suppress(OSError):
                handle.seek(0)
                handle.truncate()
            fcntl.flock(handle, fcntl.LOCK_UN)


def _take(store: Store, handle: IO[str], path: str) -> None:
    """Lock `handle`, waiting only for the processes of a run whose `auditc` has exited."""
    import fcntl

    deadline = time.monotonic() + STOPPED_RUN_WAIT_S
    told = False
    while True:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except OSError:
            holder = _read_holder(path)
        if holder is None or _alive(holder) or time.monotonic() >= deadline:
            raise _in_use(store, holder)
        if not told:
            logger.warning(
                "store %s: waiting for the processes of a stopped run (%s) to finish",
                store.uri,
                holder.describe(),
            )
            told = True
        time.sleep(0.2)


def _alive(holder: StoreWriter) -> bool:
    """Whether the holder's `auditc` process still runs (True when it is on another host)."""
    if holder.host != socket.gethostname():
        return True
    try:
        os.kill(holder.pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _read_holder(path: str) -> StoreWriter | None:
    # The holder writes right after locking: a reader may come in between.
    for _ in range(3):
        try:
            with open(path, encoding="utf-8") as handle:
                text = handle.read()
            if text.strip():
                return StoreWriter.model_validate_json(text)
        except (OSError, ValidationError):
            pass
        time.sleep(0.05)
    return None


# ------------------------------------------------------------------ object stores


@contextlib.contextmanager
def _lease(store: Store, me: StoreWriter) -> Iterator[None]:
    current = _read_lease(store)
    now = datetime.now(UTC)
    if current is not None and current.expires is not None and current.expires > now:
        raise _in_use(store, current)
    _write_lease(store, me)
    time.sleep(LEASE_SETTLE_S)
    winner = _read_lease(store)
    if winner is None or winner.token != me.token:
        raise _in_use(store, winner)
    stop = threading.Event()
    renewer = threading.Thread(
        target=_renew, args=(store, me, stop), name="auditc-store-lease", daemon=True
    )
    renewer.start()
    try:
        yield
    finally:
        stop.set()
        renewer.join()
        held = _read_lease(store)
        if held is not None and held.token == me.token:
            with contextlib.suppress(OSError, StoreError):
                store.fs.delete_file(store.path(LEASE_FILE))


def _renew(store: Store, me: StoreWriter, stop: threading.Event) -> None:
    while not stop.wait(LEASE_RENEW_S):
        try:
            _write_lease(store, me)
        except StoreError as exc:  # the next renewal may succeed; the lease lasts meanwhile
            logger.warning("could not renew the store's writer lease: %s", exc)


def _write_lease(store: Store, me: StoreWriter) -> None:
    expires = datetime.now(UTC) + timedelta(seconds=LEASE_TTL_S)
    lease = me.model_copy(update={"expires": expires.replace(microsecond=0)})
    store.write_bytes(lease.model_dump_json().encode(), LEASE_FILE)


def _read_lease(store: Store) -> StoreWriter | None:
    if not store.exists(LEASE_FILE):
        return None
    try:
        return StoreWriter.model_validate_json(store.read_bytes(LEASE_FILE))
    except (ValidationError, StoreError):
        return None  # unreadable: treated as absent, and overwritten


# ------------------------------------------------------------------ messages


def _in_use(store: Store, holder: StoreWriter | None) -> StoreError:
    who = holder.describe() if holder is not None else "another process (it gave no details)"
    lapse = ""
    if holder is not None and holder.expires is not None:
        lapse = (
            f"; its lease expires at {holder.expires:%H:%M:%S} UTC unless renewed, so if that "
            "run is gone, run again after that"
        )
    elif holder is not None and not _alive(holder):
        lapse = (
            f"; that auditc has exited, but processes it started still hold the lock after "
            f"{STOPPED_RUN_WAIT_S:g} s (see `ps -o pid,comm` for auditc-* processes)"
        )
    return StoreError(
        f"store {store.uri} is being written by {who}{lapse}. One run writes to a store at "
        "a time: wait for it to finish (or stop it), then run again; reading commands "
        "(plan, check, report, diff) work meanwhile",
        code=STORE_IN_USE,
    )


def _command(argv: Sequence[str]) -> str:
    """The command line, with `auditc` for the script's path and no secrets from URLs."""
    words = [os.path.basename(argv[0]) if argv else "auditc", *argv[1:]]
    text = shlex.join(words)
    # Query strings and user:password@ of store URIs may carry credentials.
    text = re.sub(r"(://)[^/@\s]*@", r"\1", text)
    return re.sub(r"\?[^\s']*", "?…", text)


def _duration(delta: timedelta) -> str:
    seconds = max(int(delta.total_seconds()), 0)
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    return f"{seconds // 3600} h"
