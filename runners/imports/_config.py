"""The import step's config and result models (see docs/contracts.md)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, model_validator

from schemas import Evaluation

__all__ = ["ImportConfig", "ImportResult"]


class ImportConfig(BaseModel):
    """What one import needs; the backend writes it as JSON.

    Example:
        >>> ImportConfig.model_validate({                                  # doctest: +SKIP
        ...     "evaluation": evaluation.model_dump(mode="json"),
        ...     "source_path": "/project/audits/logs/run.eval",
        ...     "output_uri": "/project/.auditc/evaluation/inspect-run/3f2a…",
        ... })
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    evaluation: Evaluation
    source_path: str
    """Absolute path of the log (`spec.imported.path`)."""
    dataset_uri: str | None = None
    """The node URI of `spec.dataset`, when the Evaluation names one: checked against the log."""
    output_uri: str
    """The node URI the output is written to."""

    @model_validator(mode="after")
    def _imported(self) -> ImportConfig:
        if self.evaluation.spec.imported is None:
            raise ValueError(
                f"Evaluation/{self.evaluation.name} imports nothing (no spec.imported)"
            )
        return self


class ImportResult(BaseModel):
    """What one import wrote."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    rows: int
    """Output rows: one per sample and epoch."""
    samples: int
    epochs: int
    """The most epochs any sample has."""
    errors: int
    """Rows whose sample ended in an error (`_error_` set)."""
    columns: list[str]
