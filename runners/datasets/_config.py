"""The dataset ingestion step's config and result models (see docs/contracts.md)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, model_validator

from schemas import Dataset

__all__ = ["IngestConfig", "IngestResult"]


class IngestConfig(BaseModel):
    """What one ingestion needs; the backend writes it as JSON.

    Example:
        >>> IngestConfig.model_validate({                                  # doctest: +SKIP
        ...     "dataset": dataset.model_dump(mode="json"),
        ...     "source_path": "/project/audits/tutorial/data/general.jsonl",
        ...     "output_uri": "/project/.auditc/dataset/general-sentences/3f2a…",
        ... })
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    dataset: Dataset
    source_path: str | None = None
    """Absolute path of the data file; None for a Hugging Face source."""
    output_uri: str
    """The node URI the parts are written to."""

    @model_validator(mode="after")
    def _source_given(self) -> IngestConfig:
        if self.dataset.spec.file is not None and self.source_path is None:
            raise ValueError("a file dataset needs source_path (the absolute path of its file)")
        if self.dataset.spec.huggingface is not None and self.source_path is not None:
            raise ValueError("a Hugging Face dataset takes no source_path")
        return self


class IngestResult(BaseModel):
    """What one ingestion wrote."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    rows: int
    columns: list[str]
    """Stored columns: `_index_`, then the declared columns in declaration order."""
