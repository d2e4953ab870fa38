"""Fixtures that start real inference servers on 127.0.0.1 and stop them afterwards."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from inference_support import Running, launch


@pytest.fixture
def start_server(tmp_path: Path) -> Iterator[Callable[..., Running]]:
    started: list[Running] = []

    def start(config: dict[str, Any], **kwargs: Any) -> Running:
        running = launch(tmp_path, config, **kwargs)
        started.append(running)
        return running

    yield start
    for running in started:
        running.stop()
