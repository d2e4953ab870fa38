"""Shared pieces of the benchmarks: conditions, the pinned server, measured subprocesses.

Every benchmark is a script (`python tests/benchmarks/bench_<name>.py`) that imports this
module from its own directory. Nothing here talks to anything but 127.0.0.1.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import platform
import random
import shutil
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
PYTHON = str(REPO / ".venv" / "bin" / "python") if (REPO / ".venv").is_dir() else sys.executable
AUDITC = str(Path(PYTHON).parent / "auditc")
TIME = "/usr/bin/time"
"""GNU time (Debian package `time`): CPU time and peak RSS of a command."""

SERVER_CPU = os.environ.get("BENCH_SERVER_CPU", "0")
"""The core the benchmark server is pinned to."""
CLIENT_CPU = os.environ.get("BENCH_CLIENT_CPU", "1")
"""The core every client under test is pinned to."""

_WORDS = [
    "audit",
    "model",
    "safety",
    "fairness",
    "data",
    "prompt",
    "answer",
    "policy",
    "risk",
    "harm",
    "test",
    "score",
    "case",
    "review",
    "bias",
    "label",
    "group",
    "metric",
    "system",
    "output",
    "input",
    "report",
    "check",
    "value",
    "sample",
]


# ------------------------------------------------------------------ conditions


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "-"


def _cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def _wrk_version() -> str:
    if not shutil.which("wrk"):
        return "not installed"
    out = subprocess.run(["wrk", "-v"], capture_output=True, text=True, check=False)
    return (out.stdout or out.stderr).split("\n", 1)[0].strip()


def conditions(title: str, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """Print and return what the figures were measured under."""
    info: dict[str, Any] = {
        "benchmark": title,
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "load_average": " ".join(f"{x:.2f}" for x in os.getloadavg()),
        "python": platform.python_version(),
        "bytecode": "cached (PYTHONDONTWRITEBYTECODE unset for measured commands)",
        "os": platform.platform(terse=True),
        "versions": {
            d: _version(d)
            for d in ("auditc", "aiohttp", "httpx", "granian", "uvloop", "pyarrow", "pydantic")
        },
        **(extra or {}),
    }
    print(f"# {title}")
    for key, value in info.items():
        if key == "benchmark":
            continue
        if isinstance(value, dict):
            value = ", ".join(f"{k} {v}" for k, v in value.items())
        print(f"#   {key}: {value}")
    sys.stdout.flush()
    return info


def wait_for_quiet(max_load: float = 0.5, timeout_s: float = 0.0) -> None:
    """Wait up to `timeout_s` for the 1-minute load average to drop below `max_load`."""
    deadline = time.monotonic() + timeout_s
    while os.getloadavg()[0] >= max_load and time.monotonic() < deadline:
        time.sleep(5)


# -------------------------------------------------------------------- processes


@dataclass
class Measured:
    """What one measured subprocess did (its waited-for descendants included)."""

    wall_s: float
    cpu_s: float
    """User + system CPU of the process and every descendant it waited for."""
    max_rss_mb: float
    """The largest peak RSS among the process and its waited-for descendants."""
    returncode: int
    stdout: str = ""
    stderr: str = ""


def pinned(cmd: Sequence[str], cpu: str = CLIENT_CPU) -> list[str]:
    """`cmd` pinned to one core with taskset (when available)."""
    return ["taskset", "-c", cpu, *cmd] if shutil.which("taskset") else list(cmd)


def run_measured(
    cmd: Sequence[str],
    *,
    cwd: str | Path | None = None,
    env: dict[str, str] | None = None,
    timeout_s: float = 900.0,
    check: bool = True,
) -> Measured:
    """Run `cmd` under GNU time, which reports its CPU time and peak RSS.

    Why not this process's own `wait4`: Linux starts a child's peak RSS at the size of the
    process that forked it (the benchmark, ~100 MB with pyarrow loaded), so the child is
    forked by `/usr/bin/time` (2 MB) instead. Its output goes to temporary files.

    Raises:
        RuntimeError: it ran past `timeout_s`, or exited non-zero while `check` is set.
    """
    import tempfile

    merged = {**os.environ, **(env or {})}
    # Measure software as it runs once installed: with its bytecode cached (a machine
    # that sets PYTHONDONTWRITEBYTECODE would recompile every module on every start).
    merged.pop("PYTHONDONTWRITEBYTECODE", None)
    with (
        tempfile.TemporaryFile("w+") as out,
        tempfile.TemporaryFile("w+") as err,
        tempfile.NamedTemporaryFile("r") as usage,
    ):
        timed = [TIME, "-f", "%U %S %M", "-o", usage.name, *cmd]
        start = time.perf_counter()
        proc = subprocess.Popen(timed, cwd=cwd, env=merged, stdout=out, stderr=err)
        try:
            returncode = proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            raise RuntimeError(f"{' '.join(cmd)} ran past {timeout_s:.0f} s") from None
        wall = time.perf_counter() - start
        out.seek(0)
        err.seek(0)
        # GNU time writes "Command exited with non-zero status N" first when it fails.
        user, system, rss_kb = usage.read().strip().splitlines()[-1].split()
        result = Measured(
            wall_s=wall,
            cpu_s=float(user) + float(system),
            max_rss_mb=int(rss_kb) / 1024.0,
            returncode=returncode,
            stdout=out.read(),
            stderr=err.read(),
        )
    if check and result.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {result.returncode}:\n{result.stderr[-3000:]}")
    return result


# ----------------------------------------------------------------------- server


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def http_json(url: str, data: bytes | None = None, timeout: float = 5.0) -> Any:
    """GET (or POST `data`) and decode the JSON answer."""
    request = urllib.request.Request(url, data=data, method="POST" if data is not None else "GET")
    request.add_header("content-type", "application/json")
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return json.loads(response.read())


@dataclass
class ServerStats:
    """The server's counters for one measured run."""

    requests: int
    rows: int
    first: float
    last: float

    @property
    def window_s(self) -> float:
        """First request arrived → last response sent."""
        return max(self.last - self.first, 1e-9)

    @property
    def rows_per_s(self) -> float:
        """Rows answered per second in flight."""
        return self.rows / self.window_s


@dataclass
class BenchServer:
    """The granian benchmark server (`_server.py`), pinned to `SERVER_CPU`."""

    delay_ms: float = 0.0
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """Base URL."""
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> BenchServer:
        cmd = pinned(
            [
                str(Path(PYTHON).parent / "granian"),
                "--interface",
                "rsgi",
                "--loop",
                "uvloop",
                "--workers",
                "1",
                "--runtime-threads",
                "1",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--no-access-log",
                "--log-level",
                "warning",
                "--backlog",
                "4096",
                "--working-dir",
                str(HERE),
                "_server:app",
            ],
            SERVER_CPU,
        )
        env = {**os.environ, "BENCH_DELAY_MS": str(self.delay_ms)}
        self.proc = subprocess.Popen(
            cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError):
                http_json(self.url + "/health", timeout=1.0)
                return self
            if self.proc.poll() is not None:
                raise RuntimeError(f"benchmark server exited: {self.proc.stderr.read().decode()}")  # type: ignore[union-attr]
            time.sleep(0.1)
        self.__exit__()
        raise RuntimeError("benchmark server did not become ready in 30 s")

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def reset(self) -> None:
        """Zero the counters before a measured run."""
        http_json(self.url + "/reset", data=b"{}")

    def stats(self) -> ServerStats:
        """The counters since the last reset."""
        raw = http_json(self.url + "/stats")
        return ServerStats(raw["requests"], raw["rows"], raw["first"], raw["last"])

    def cpu_s(self) -> float:
        """CPU seconds the server (all its processes) has used so far."""
        import psutil

        assert self.proc is not None
        root = psutil.Process(self.proc.pid)
        total = 0.0
        for proc in [root, *root.children(recursive=True)]:
            with contextlib.suppress(psutil.NoSuchProcess):
                times = proc.cpu_times()
                total += times.user + times.system
        return total


# ------------------------------------------------------------------------- data


def prompts(n: int, seed: int = 0) -> list[str]:
    """`n` distinct prompts of 150–250 characters (the shape the peers were measured with).

    Each is `Row <i>: ` followed by words from a pool of random sentences, so a million
    of them take a second to make and no two are equal.
    """
    rng = random.Random(seed)
    pool = []
    for _ in range(4099):
        words = [rng.choice(_WORDS) for _ in range(60)]
        pool.append((rng.randint(150, 250), " ".join(words)))
    out: list[str] = []
    for i in range(n):
        length, text = pool[i % len(pool)]
        out.append(f"Row {i}: {text}"[:length])
    return out


def write_prompts_parquet(path: Path, n: int) -> Path:
    """A Parquet file with one `text` column of `n` prompts."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table({"text": pa.array(prompts(n), pa.string())}), path)
    return path


# ---------------------------------------------------------------------- reports


def median(values: Sequence[float]) -> float:
    """The median (of the repeats of one measurement)."""
    return statistics.median(values) if values else float("nan")


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A Markdown table; floats get thousands separators or 2–3 significant digits."""

    def cell(value: Any) -> str:
        if isinstance(value, float):
            if value != value:  # NaN
                return "-"
            if abs(value) >= 100:
                return f"{value:,.0f}"
            if abs(value) >= 1:
                return f"{value:.2f}"
            return f"{value:.3f}"
        if isinstance(value, int):
            return f"{value:,}"
        return str(value)

    lines = [
        "| " + " | ".join(headers) + " |",
        "|" + "|".join("---" for _ in headers) + "|",
    ]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


@contextlib.contextmanager
def temp_dir(prefix: str) -> Iterator[Path]:
    """A temporary directory, removed afterwards unless BENCH_KEEP is set."""
    import tempfile

    path = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        yield path
    finally:
        if not os.environ.get("BENCH_KEEP"):
            shutil.rmtree(path, ignore_errors=True)
