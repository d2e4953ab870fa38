"""One writer per store: a second `auditc run` is refused and told who writes; readers are not.

Local stores are locked with a POSIX lock the kernel releases when its holder dies; object
stores (moto's S3 server) with a lease that expires.
"""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow.fs as pafs
import pytest
from local_backend_helpers import AUDITC, read_until, start_auditc
from moto.server import ThreadedMotoServer

from compiler.backends.local._lock import LEASE_FILE, StoreWriter, store_writer_lock
from schemas import Store, StoreError

SLOW_MODEL = {"AUDITC_TEST_MODEL_DELAY": "1"}


def _auditc(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*AUDITC, *args], capture_output=True, text=True, timeout=300, check=False
    )


def test_a_second_writer_is_refused_and_told_who_writes(project: Path) -> None:
    first = start_auditc("-C", str(project), "run", "audit.yaml", env=SLOW_MODEL)
    try:
        read_until(first.stderr, "Evaluation/phrases-through-length")
        started = time.monotonic()
        second = _auditc("-C", str(project), "run", "audit.yaml")
        assert time.monotonic() - started < 30  # refused at once, not after the first ends
        assert first.poll() is None
        assert second.returncode == 1, second.stderr
        message = second.stderr
        assert f"is being written by `auditc -C {project} run audit.yaml`" in message
        assert f"(pid {first.pid} on host {socket.gethostname()})" in message
        assert "running since" in message and "One run writes to a store at a time" in message
        assert "Traceback" not in message

        # Readers are not blocked.
        plan = _auditc("-C", str(project), "plan", "audit.yaml")
        assert plan.returncode == 0, plan.stderr
        out, err = first.communicate(timeout=300)
    finally:
        if first.poll() is None:
            first.kill()
    assert first.returncode == 0, err
    again = _auditc("-C", str(project), "run", "audit.yaml")
    assert again.returncode == 0 and "Nothing to run" in again.stdout


def test_the_lock_of_a_killed_writer_is_released(project: Path) -> None:
    first = start_auditc("-C", str(project), "run", "audit.yaml", env=SLOW_MODEL)
    try:
        read_until(first.stderr, "InferenceService/length-service started at")
    finally:
        first.kill()
        first.wait()
    done = _auditc("-C", str(project), "run", "audit.yaml")
    assert done.returncode == 0, done.stderr


def test_the_local_lock_names_its_holder_and_is_free_again_after(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "store")
    with store_writer_lock(store, ["auditc", "run", "--store", "s3://b/p?secret_key=x"]) as me:
        held = StoreWriter.model_validate_json((tmp_path / "store" / ".writer.lock").read_text())
        assert held == me.holder and held.command == "auditc run --store 's3://b/p?…'"
        # Another process is refused.
        probe = subprocess.run(
            [
                str(Path(AUDITC[0]).parent / "python"),
                "-c",
                "import sys; from schemas import Store;"
                "from compiler.backends.local._lock import store_writer_lock\n"
                "with store_writer_lock(Store.open(sys.argv[1]), ['auditc', 'run']): pass",
                str(tmp_path / "store"),
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        assert probe.returncode != 0 and "is being written by `auditc run --store" in probe.stderr
    with store_writer_lock(store, ["auditc", "run"]):
        pass


@pytest.fixture
def s3_store(monkeypatch: pytest.MonkeyPatch) -> Iterator[Store]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_EC2_METADATA_DISABLED": "true",
    }.items():
        monkeypatch.setenv(name, value)
    fs = pafs.S3FileSystem(
        endpoint_override=f"127.0.0.1:{port}", scheme="http", allow_bucket_creation=True
    )
    fs.create_dir("audits")
    try:
        yield Store.open(f"s3://audits/runs?endpoint_override=127.0.0.1:{port}&scheme=http")
    finally:
        server.stop()


def test_an_object_store_lease_refuses_a_second_writer_until_it_ends(s3_store: Store) -> None:
    with store_writer_lock(s3_store, ["auditc", "run", "one"]):
        lease = StoreWriter.model_validate_json(s3_store.read_bytes(LEASE_FILE))
        assert lease.command == "auditc run one" and lease.expires is not None
        with (
            pytest.raises(StoreError, match=r"is being written by `auditc run one`") as info,
            store_writer_lock(s3_store, ["auditc", "run", "two"]),
        ):
            pass
        assert info.value.code == "store-in-use" and "its lease expires at" in str(info.value)
    assert not s3_store.exists(LEASE_FILE)
    with store_writer_lock(s3_store, ["auditc", "run", "two"]):
        pass


def test_an_expired_lease_of_a_crashed_writer_is_taken_over(s3_store: Store) -> None:
    gone = StoreWriter(
        pid=1,
        host="elsewhere",
        command="auditc run",
        since=datetime.now(UTC) - timedelta(hours=1),
        expires=datetime.now(UTC) - timedelta(minutes=1),
        token="old",
    )
    s3_store.write_bytes(gone.model_dump_json().encode(), LEASE_FILE)
    with store_writer_lock(s3_store, ["auditc", "run"]) as me:
        lease = StoreWriter.model_validate_json(s3_store.read_bytes(LEASE_FILE))
        assert lease.token == me.holder.token


_HOLD_THEN_EXIT = """
import os, sys, time
from schemas import Store
from compiler.backends.local._lock import store_writer_lock

with store_writer_lock(Store.open(sys.argv[1]), ["auditc", "run"]):
    if os.fork() == 0:  # a process of the run that outlives its auditc, holding the lock
        os.close(1), os.close(2)  # (the test waits for the output of the first process only)
        time.sleep(2)
        os._exit(0)
    print("locked", flush=True)
    os._exit(0)  # auditc dies (no release)
"""


def test_a_writer_waits_for_the_processes_of_a_run_whose_auditc_died(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = Store.open(tmp_path / "store")
    python = str(Path(AUDITC[0]).parent / "python")
    held = subprocess.run(
        [python, "-c", _HOLD_THEN_EXIT, str(tmp_path / "store")],
        capture_output=True,
        text=True,
        check=True,
    )
    assert held.stdout.strip() == "locked"
    started = time.monotonic()
    with store_writer_lock(store, ["auditc", "run", "again"]):
        waited = time.monotonic() - started
    assert 0.5 < waited < 20
    assert "waiting for the processes of a stopped run" in caplog.text
