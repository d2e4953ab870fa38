"""The analysis config: what the method runner tells a method about its run.

The runner writes an `AnalysisConfig` as JSON and points `AUDITC_ANALYSIS_CONFIG` at
it before it calls a function or starts a notebook kernel; `runners.analysis` reads it.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from schemas import MethodError, ScoreSpec

__all__ = ["ANALYSIS_CONFIG_ENV", "AnalysisConfig", "MethodInputRef", "load_config"]

ANALYSIS_CONFIG_ENV = "AUDITC_ANALYSIS_CONFIG"
"""Environment variable holding the path of the analysis config JSON file."""


class MethodInputRef(BaseModel):
    """One resolved input of a method: what kind of node it is and where it is stored.

    Example:
        >>> MethodInputRef(kind="Evaluation", uri="/tmp/store/evaluation/e/3f2a").kind
        'Evaluation'
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["Dataset", "Evaluation", "Measurement"]
    uri: str
    """Node URI: a local directory or `s3://bucket/prefix/<kind>/<name>/<id>?…`."""


class AnalysisConfig(BaseModel):
    """What a running method may ask about: its inputs, parameters and score specs."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    method: str
    """Name of the Method resource."""
    node_id: str
    """The node id of this run (the last part of its store path)."""
    output_kind: Literal["Measurement", "SafetyCase"]
    inputs: dict[str, MethodInputRef]
    parameters: dict[str, Any] = Field(default_factory=dict)
    scores: list[ScoreSpec] = Field(default_factory=list)
    output_dir: str
    """A local, writable directory; what a notebook writes there is kept with the node."""


@lru_cache(maxsize=4)
def _load(path: str) -> AnalysisConfig:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise MethodError(f"cannot read the analysis config {path}: {exc}") from exc
    try:
        return AnalysisConfig.model_validate_json(text)
    except ValidationError as exc:
        raise MethodError(f"{path}: not a valid analysis config: {exc}") from exc


def load_config() -> AnalysisConfig:
    """The config of the current run, read from the file `AUDITC_ANALYSIS_CONFIG` names.

    Raises:
        MethodError: the variable is unset (not running under the method runner) or the
            file is unreadable.
    """
    path = os.environ.get(ANALYSIS_CONFIG_ENV)
    if not path:
        raise MethodError(
            f"{ANALYSIS_CONFIG_ENV} is not set: runners.analysis works inside a method run "
            "(`auditc run`, or `python -m runners.methods CONFIG.json`); to try a notebook by "
            "hand, point it at the analysis config JSON of an earlier run"
        )
    return _load(path)
