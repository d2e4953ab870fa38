"""Download a model's weights once into the cluster's shared cache: the prefetch Job's step.

`python -m runners.fetch model CONFIG.json` downloads a Hugging Face repository at its
pinned commit (with the Model's allow/ignore patterns) into `HF_HUB_CACHE` — the
shared model-cache volume — then writes a marker file named after the Model's node id.
Servers then run with `HF_HUB_OFFLINE=1` and read the volume read-only, so no GPU pod
ever downloads weights, and a pod of an asynchronous run waits for the marker.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from schemas import MissingDependencyError, RunnerError

__all__ = ["ModelFetchConfig", "prefetch_model"]

logger = logging.getLogger(__name__)


class ModelFetchConfig(BaseModel):
    """A repository at a commit, and where to say it is there."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    repo: str
    revision: str
    allow_patterns: list[str] | None = None
    ignore_patterns: list[str] | None = None
    marker: str
    """Written (with the snapshot's path) once every file is in the cache."""


def prefetch_model(config: ModelFetchConfig) -> Path:
    """Download the snapshot into `HF_HUB_CACHE` and write the marker; returns the snapshot.

    Raises:
        MissingDependencyError: huggingface_hub is not installed in the image.
        RunnerError: the download failed (an unknown repository or revision, no access).
    """
    try:
        from huggingface_hub import snapshot_download
        from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError
    except ImportError as exc:
        raise MissingDependencyError(
            "the model prefetch needs huggingface_hub in the runner image"
        ) from exc
    logger.info(
        "downloading %s@%s into %s", config.repo, config.revision, os.environ.get("HF_HUB_CACHE")
    )
    try:
        path = snapshot_download(
            config.repo,
            revision=config.revision,
            allow_patterns=config.allow_patterns,
            ignore_patterns=config.ignore_patterns,
        )
    except (HfHubHTTPError, LocalEntryNotFoundError, OSError) as exc:
        raise RunnerError(f"cannot download {config.repo}@{config.revision}: {exc}") from exc
    marker = Path(config.marker)
    marker.parent.mkdir(parents=True, exist_ok=True)
    temporary = marker.with_name(f".{marker.name}.tmp")
    temporary.write_text(f"{path}\n", encoding="utf-8")
    temporary.replace(marker)  # the marker appears whole, after every file
    logger.info("%s@%s is in the cache: %s", config.repo, config.revision, path)
    return Path(path)
