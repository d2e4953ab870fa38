"""Helpers that start real inference servers (`python -m runners.inference`) on 127.0.0.1."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runners.inference import free_port, wait_ready

REPO = Path(__file__).resolve().parents[3]


@dataclass
class Running:
    process: subprocess.Popen[bytes]
    base_url: str
    log: Path

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def service(
    name: str, runner: dict[str, Any], output: dict[str, str], **interface: Any
) -> dict[str, Any]:
    return {
        "kind": "InferenceService",
        "name": name,
        "spec": {"model": "m", "runner": runner, "interface": {"output": output, **interface}},
    }


def model(spec: dict[str, Any]) -> dict[str, Any]:
    return {"kind": "Model", "name": "m", "spec": spec}


def launch(
    tmp: Path,
    config: dict[str, Any],
    *,
    env: dict[str, str] | None = None,
    ready_timeout: float | None = 60.0,
) -> Running:
    """Write CONFIG.json, start the server, and (unless ready_timeout is None) wait for it."""
    config = {"port": free_port(), **config}
    path = tmp / f"server-{config['port']}.json"
    path.write_text(json.dumps(config))
    log = tmp / f"server-{config['port']}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "runners.inference", str(path)],
            cwd=REPO,
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
        )
    running = Running(process, f"http://127.0.0.1:{config['port']}", log)
    if ready_timeout is not None:
        try:
            wait_ready(running.base_url, ready_timeout, process, log=log)
        except BaseException:
            running.stop()
            raise
    return running
