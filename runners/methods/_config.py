"""The method runner's config and result models (see docs/contracts.md)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator

# The config module only, not the analysis API (which loads pyarrow): the backend builds
# MethodConfigs in the `auditc` process, where a run with nothing to do must stay fast.
from runners.analysis._config import MethodInputRef
from schemas import Method, ScoreValue

__all__ = ["MethodConfig", "MethodInputRef", "MethodResult", "node_id_of"]


class MethodConfig(BaseModel):
    """Everything one method run needs; the backend writes it as JSON.

    Example:
        >>> MethodConfig.model_validate({                                # doctest: +SKIP
        ...     "method": method.model_dump(mode="json"),
        ...     "inputs": {"fpr": {"kind": "Measurement", "uri": "/store/method/fpr/ab12"}},
        ...     "notebook_path": "/project/audits/tutorial/notebooks/safety_case.ipynb",
        ...     "output_uri": "/store/method/safety-case/cd34",
        ... })
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    method: Method
    inputs: dict[str, MethodInputRef]
    """Input keyword → the stored node it names (one per `spec.inputs` keyword)."""
    notebook_path: str | None = None
    """Absolute path of the notebook (notebook methods only)."""
    python_paths: list[str] = Field(default_factory=list)
    """Absolute directories of the method's Modules, put on PYTHONPATH."""
    output_uri: str
    """The node URI this run writes to."""
    kernel_name: str = "python3"
    """Jupyter kernel for notebooks; `python3` is the interpreter running the runner."""

    @model_validator(mode="after")
    def _consistent(self) -> MethodConfig:
        spec = self.method.spec
        if set(self.inputs) != set(spec.inputs):
            raise ValueError(
                f"inputs {sorted(self.inputs)} do not match the method's inputs {sorted(spec.inputs)}"
            )
        for keyword, ref in self.inputs.items():
            declared = spec.inputs[keyword].kind
            if declared is not None and declared != ref.kind:
                raise ValueError(
                    f"input {keyword!r} is a {ref.kind}, the method expects {declared}"
                )
        if (spec.implementation.notebook is None) != (self.notebook_path is None):
            raise ValueError("notebook_path must be set exactly when the method is a notebook")
        return self


class MethodResult(BaseModel):
    """What one method run produced."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    rows: int | None
    """Rows of the Measurement; None for a SafetyCase."""
    scores: list[ScoreValue] = Field(default_factory=list)
    """The SafetyCase's scores, as written to `scores.json`."""


def node_id_of(uri: str) -> str:
    """The node id of a node URI: its last path component (`…/<kind>/<name>/<id>`)."""
    path = uri.partition("?")[0].rstrip("/")
    return path.rsplit("/", 1)[-1]
