"""The pydantic models of every resource kind an audit spec may declare.

One YAML document is one resource: `kind`, `name`, optional `documentation` and
`labels`, and a kind-specific `spec`. Resources refer to each other by `name`
within one project (the set of files loaded together). Paths are relative to the
YAML file that names them and must stay inside the project root.

Cross-resource rules (references, cycles, files, columns) are checked by the
compiler, not here.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, PlainValidator, ValidationError, field_validator, model_validator
from pydantic_core import PydanticCustomError, PydanticKnownError

from ._adapters import AdapterPipeline
from ._aggregate import ScoreAggregate
from ._base import (
    ColumnName,
    ColumnType,
    Documentation,
    Duration,
    Quantity,
    RelativePath,
    ResourceName,
    SpecModel,
    check_score_format,
)

__all__ = [
    "DEFAULT_BATCH_SIZE",
    "DEFAULT_CONCURRENCY",
    "DEFAULT_MAX_ATTEMPTS",
    "DEFAULT_REQUEST_TIMEOUT",
    "DEFAULT_TOTAL_TIMEOUT",
    "IMAGE_REFERENCE_PATTERN",
    "KINDS",
    "LABEL_VALUE_PATTERN",
    "WORKFLOW_KINDS",
    "DEFAULT_AUTO_CONCURRENCY_MAX",
    "DEFAULT_AUTO_CONCURRENCY_START",
    "DEFAULT_EXTERNAL_READY_TIMEOUT",
    "DEFAULT_MAX_ERROR_FRACTION",
    "DEFAULT_MAX_RESPONSE_BYTES",
    "DEFAULT_READY_TIMEOUT",
    "Accelerator",
    "AdaptiveConcurrency",
    "AnyResource",
    "ContainerRunner",
    "Dataset",
    "DatasetFile",
    "DatasetSpec",
    "ErrorPolicy",
    "Evaluation",
    "EvaluationSpec",
    "ExternalRunner",
    "Gate",
    "HuggingFaceDatasetSource",
    "HuggingFaceModelSource",
    "HuggingFaceRunner",
    "ImportedResults",
    "InferenceService",
    "InferenceServiceSpec",
    "InferenceSession",
    "InferenceSessionSpec",
    "Interface",
    "Method",
    "MethodImplementation",
    "MethodInput",
    "MethodOutput",
    "MethodSpec",
    "Model",
    "ModelSpec",
    "Module",
    "ModuleSpec",
    "PythonModelSource",
    "PythonRunner",
    "Resources",
    "RetryPolicy",
    "Runner",
    "ScoreSpec",
    "ServiceFingerprint",
    "Timeouts",
    "VLLMRunner",
]

DEFAULT_CONCURRENCY = 64
"""Requests in flight per shard when `concurrency` is not set and the runner is auditc's own."""
DEFAULT_AUTO_CONCURRENCY_MAX = 512
"""The most requests in flight `concurrency: auto` tries (per shard)."""
DEFAULT_AUTO_CONCURRENCY_START = 4
"""Where `concurrency: auto` starts: low, so a slow server is never flooded at first."""
DEFAULT_READY_TIMEOUT = 600.0
"""Seconds a server auditc starts has to become ready (a model may take that long to load)."""
DEFAULT_EXTERNAL_READY_TIMEOUT = 20.0
"""Seconds an `external` service has to answer before its evaluation fails."""
DEFAULT_MAX_ERROR_FRACTION = 0.0
"""Any row error fails an evaluation unless `errors.max_error_fraction` allows it."""
DEFAULT_MAX_RESPONSE_BYTES = 16 * 2**20
"""Largest response body accepted per row of a request (16 MiB)."""
DEFAULT_BATCH_SIZE = 1
DEFAULT_REQUEST_TIMEOUT = 30.0
DEFAULT_TOTAL_TIMEOUT = 7200.0
DEFAULT_MAX_ATTEMPTS = 5

_GIT_SHA = r"^[0-9a-f]{40}$"
_CALLABLE = r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*:[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$"
_ENV_VAR = r"^[A-Za-z_][A-Za-z0-9_]*$"

_PATH_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_DOMAIN = (
    r"(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*"
    r"|\[[a-fA-F0-9:]+\])(?::[0-9]+)?"
)
IMAGE_REFERENCE_PATTERN = (
    rf"^(?:{_DOMAIN}/)?{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*"
    r"(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?"
    r"(?:@[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,})?$"
)
"""A container image reference as registries parse it: `[registry[:port]/]name[:tag][@digest]`."""
LABEL_VALUE_PATTERN = r"^(?:(?:[A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$"
"""A Kubernetes label value (also at most 63 characters)."""
_RESERVED_PIPELINE_KWARGS = {
    "task": "it is runner.task",
    "model": "the runner passes the Model's files",
    "device": "it is runner.device",
    "revision": "the revision is Model.spec.huggingface.revision",
    "token": "tokens come from the HF_TOKEN environment variable or a Secret, never from specs",
    "use_auth_token": "tokens come from the HF_TOKEN environment variable or a Secret",
}


def _find_key(value: Any, key: str, path: str = "") -> str | None:
    """The dotted path of the first `key` set to anything but false in nested mappings."""
    if isinstance(value, dict):
        for k, v in value.items():
            here = f"{path}.{k}" if path else str(k)
            if k == key and v is not False:
                return here
            found = _find_key(v, key, here)
            if found is not None:
                return found
    elif isinstance(value, list):
        for i, item in enumerate(value):
            found = _find_key(item, key, f"{path}.{i}")
            if found is not None:
                return found
    return None


def check_pinned_requirement(value: str) -> str:
    """Check a pip requirement is pinned (`name==1.2.3`, `name===x` or `name @ URL`).

    Raises:
        ValueError: it does not parse, or allows more than one version.
    """
    from packaging.requirements import InvalidRequirement, Requirement

    try:
        requirement = Requirement(value)
    except InvalidRequirement as exc:
        raise ValueError(f"{value!r} is not a pip requirement: {exc}") from None
    specifiers = list(requirement.specifier)
    pinned = requirement.url is not None or (
        len(specifiers) == 1
        and specifiers[0].operator in ("==", "===")
        and not specifiers[0].version.endswith(".*")
    )
    if not pinned:
        raise ValueError(
            f"{value!r} is not pinned; expected name==version (or name @ URL), so that every "
            "run installs the version the node id stands for"
        )
    return value


class _Resource(SpecModel):
    """Fields every resource shares."""

    name: ResourceName
    """Unique within the project; other resources refer to this one by it."""
    documentation: Documentation | None = None
    """Title, summary and Markdown shown in reports. Does not change any result."""
    labels: dict[str, str] = Field(default_factory=dict)
    """Free-form labels for selection and reports. Do not change any result."""


# --------------------------------------------------------------------- Dataset


class DatasetFile(SpecModel):
    """A data file in the project."""

    path: RelativePath
    """JSONL, CSV, Parquet or Arrow IPC file, or an Inspect AI log, relative to this YAML file."""
    format: Literal["jsonl", "csv", "parquet", "arrow", "inspect"] | None = None
    """File format; by default taken from the extension (.jsonl/.json, .csv, .parquet, .arrow/.feather, .eval). `inspect`: an Inspect AI log (`.eval`, or a `.json` log), one row per sample and epoch."""


class HuggingFaceDatasetSource(SpecModel):
    """A dataset repository on the Hugging Face Hub, pinned to a commit."""

    repo: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*$")
    """`org/name` of the dataset repository."""
    revision: str = Field(pattern=_GIT_SHA)
    """The full 40-character commit hash: results must be reproducible."""
    files: list[str] = Field(min_length=1)
    """Parquet/JSONL/CSV files (or globs) inside the repository to read, in order."""


class DatasetSpec(SpecModel):
    """Where the rows come from and which columns they must have.

    Exactly one of `file` and `huggingface`. Each row gets `_index_` (int64): its
    position in the source unless `index` names an integer column of unique values.
    """

    file: DatasetFile | None = None
    huggingface: HuggingFaceDatasetSource | None = None
    columns: dict[ColumnName, ColumnType] = Field(min_length=1)
    """Declared columns and their Arrow types; every row is checked against them."""
    index: ColumnName | None = None
    """An integer column of unique values to use as `_index_` (default: row position)."""

    @model_validator(mode="after")
    def _one_source(self) -> DatasetSpec:
        if (self.file is None) == (self.huggingface is None):
            raise ValueError("set exactly one of 'file' and 'huggingface'")
        if self.index is not None and self.index not in self.columns:
            raise ValueError(f"index column {self.index!r} is not among the declared columns")
        return self


class Dataset(_Resource):
    """Input instances as an Arrow table, each with a unique `_index_`."""

    kind: Literal["Dataset"]
    spec: DatasetSpec


# ----------------------------------------------------------------------- Model


class HuggingFaceModelSource(SpecModel):
    """A model repository on the Hugging Face Hub, pinned to a commit."""

    repo: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)?$")
    """`org/name` of the model repository."""
    revision: str = Field(pattern=_GIT_SHA)
    """The full 40-character commit hash."""
    allow_patterns: list[str] | None = None
    """Only download files matching these globs (passed to `snapshot_download`)."""
    ignore_patterns: list[str] | None = None
    """Skip files matching these globs."""


class PythonModelSource(SpecModel):
    """A Python callable that is the model: from an installed package or a Module."""

    callable: str = Field(pattern=_CALLABLE)
    """`module.path:function`; it takes a list of inputs and returns a list of outputs."""
    package: str | None = Field(default=None, max_length=200)
    """The pip requirement that provides it, pinned (`alt-profanity-check==1.9.1`, or `name @ URL`)."""
    module: ResourceName | None = None
    """A Module resource whose directory provides it."""
    argument: str | None = None
    """If set, the callable receives the list of values of this request field (instead of request objects)."""
    output: str | None = None
    """If set, each returned value is wrapped as `{output: value}`."""

    @field_validator("package")
    @classmethod
    def _pinned(cls, value: str | None) -> str | None:
        return None if value is None else check_pinned_requirement(value)


class ModelSpec(SpecModel):
    """Exactly one of `huggingface`, `path` and `python`."""

    huggingface: HuggingFaceModelSource | None = None
    path: RelativePath | None = None
    """A local directory of model files (a `save_pretrained` folder), relative to this YAML file."""
    python: PythonModelSource | None = None

    @model_validator(mode="after")
    def _one_source(self) -> ModelSpec:
        given = [k for k in ("huggingface", "path", "python") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(
                "set exactly one of 'huggingface', 'path' and 'python'"
                + (f" (found {', '.join(given)})" if given else "")
            )
        return self


class Model(_Resource):
    """The artefacts of a model."""

    kind: Literal["Model"]
    spec: ModelSpec


# ---------------------------------------------------------- InferenceService


class Accelerator(SpecModel):
    """GPUs for one replica."""

    kind: str = Field(default="nvidia.com/gpu", pattern=r"^[a-z0-9.-]+/[a-z0-9.-]+$")
    """The extended resource name (`nvidia.com/gpu`)."""
    count: int = Field(default=1, ge=1, le=16)
    product: str | None = Field(default=None, max_length=63, pattern=LABEL_VALUE_PATTERN)
    """A GPU product to select nodes by (`NVIDIA-H100-80GB-HBM3`), if it matters; a label value."""


class Resources(SpecModel):
    """Compute for one replica of a service (used on Kubernetes; advisory locally)."""

    cpu: Quantity = "1"
    memory: Quantity = "2Gi"
    accelerator: Accelerator | None = None
    throughput: float | None = Field(default=None, gt=0, exclude=True)
    """Rows per second one server answers (one shard's), if known: `auditc plan` estimates
    evaluations' time and GPU-hours from it (else from the store's last run of the
    service). A planning hint: it changes no result, so it is not part of the node id."""


class PythonRunner(SpecModel):
    """Serve a Python callable (`Model.spec.python`) with auditc's runner."""

    kind: Literal["python"]


class HuggingFaceRunner(SpecModel):
    """Serve a transformers pipeline loaded through huggingface_hub."""

    kind: Literal["huggingface"]
    task: Literal["text-classification", "text-generation"]
    pipeline_kwargs: dict[str, Any] = Field(default_factory=dict)
    """Extra keyword arguments for `transformers.pipeline` (never code)."""
    generate_kwargs: dict[str, Any] = Field(default_factory=dict)
    """Keyword arguments for each call (`max_new_tokens`, `top_k`, …)."""
    device: str = "auto"
    """`auto` (CUDA when present), `cpu` or `cuda`."""

    @field_validator("pipeline_kwargs")
    @classmethod
    def _no_code(cls, value: dict[str, Any]) -> dict[str, Any]:
        for key, why in _RESERVED_PIPELINE_KWARGS.items():
            if key in value:
                raise ValueError(f"pipeline_kwargs may not set {key!r}: {why}")
        path = _find_key(value, "trust_remote_code")
        if path is not None:
            raise ValueError(
                f"{path!r} is not allowed: trust_remote_code runs Python code "
                "from the model repository, and a spec never runs code from a model (use a "
                "model transformers supports natively, or a python runner with a Module)"
            )
        return value


class VLLMRunner(SpecModel):
    """The official vLLM OpenAI-compatible server (Kubernetes and GPUs)."""

    kind: Literal["vllm"]
    image: str = Field(default="vllm/vllm-openai:v0.11.0", pattern=IMAGE_REFERENCE_PATTERN)
    args: list[str] = Field(default_factory=list)
    """Extra `vllm serve` arguments (`--max-model-len`, `--dtype`, …)."""


class ContainerRunner(SpecModel):
    """Any container image that serves HTTP on a declared port."""

    kind: Literal["container"]
    image: str = Field(pattern=IMAGE_REFERENCE_PATTERN, max_length=400)
    """`[registry/]name[:tag][@sha256:digest]`; pin it by digest for reproducible results."""
    port: int = Field(default=8000, ge=1, le=65535)
    command: list[str] | None = None
    args: list[str] = Field(default_factory=list)
    env: dict[str, str] = Field(default_factory=dict)
    """Non-secret environment variables."""
    health_path: str = "/health"


class ServiceFingerprint(SpecModel):
    """What identifies an external service at run time (recorded in the Evaluation's manifest).

    Ask it with `get` (a path to GET) or `probe` (a request body POSTed to
    `interface.endpoint`); keep the answer's `header`, the value at `select`, or by default
    a hash of the whole answer.
    """

    get: str | None = Field(default=None, pattern=r"^/[^\s]*$")
    """A path to GET, e.g. `/v1/models` (an OpenAI-compatible server lists what it serves)."""
    probe: dict[str, Any] | None = None
    """A request body to POST to `interface.endpoint` instead (e.g. a fixed prompt at temperature 0)."""
    header: str | None = Field(default=None, pattern=r"^[A-Za-z0-9-]{1,100}$")
    """Keep this response header's value (e.g. `openai-version`, `x-model-version`)."""
    select: str | None = Field(default=None, pattern=r"^\$", max_length=200)
    """Keep the value at this JSON path of the answer (e.g. `$.system_fingerprint`, `$.data[0].root`)."""

    @model_validator(mode="after")
    def _one_question_one_answer(self) -> ServiceFingerprint:
        if (self.get is None) == (self.probe is None):
            raise ValueError("give exactly one of 'get' (a path) and 'probe' (a request body)")
        if self.header is not None and self.select is not None:
            raise ValueError("give at most one of 'header' and 'select'")
        return self


class ExternalRunner(SpecModel):
    """An existing HTTP endpoint (OpenAI-compatible or plain JSON)."""

    kind: Literal["external"]
    url: str = Field(pattern=r"^https?://[^\s]+$")
    """Base URL of the service; `interface.endpoint` is appended."""
    api_key_env: str | None = Field(default=None, pattern=_ENV_VAR)
    """Name of the environment variable (or Kubernetes Secret key) holding the API key."""
    health_path: str | None = None
    """A readiness path to poll before sending, if the service has one."""
    version: str | None = Field(default=None, min_length=1, max_length=200)
    """The service's version as you know it (a model snapshot, a release). Part of the node id:
    a new version re-runs the evaluations that use the service."""
    fingerprint: ServiceFingerprint | Literal[False] | None = None
    """How to fingerprint the service when an evaluation runs; `plan` and `run` warn when it
    no longer matches. Default: `GET /v1/models` when `interface.endpoint` starts with `/v1/`;
    `false`: none."""


Runner = Annotated[
    PythonRunner | HuggingFaceRunner | VLLMRunner | ContainerRunner | ExternalRunner,
    Field(discriminator="kind"),
]


class Interface(SpecModel):
    """How dataset rows become requests and responses become output columns."""

    endpoint: str = Field(default="/predict", pattern=r"^/[A-Za-z0-9/_.-]*$")
    """HTTP path that receives POSTed requests."""
    request: AdapterPipeline = Field(default_factory=list)
    """Adapters from a dataset row to the request body. A mapping is shorthand for one TransformJSON."""
    response: AdapterPipeline = Field(default_factory=list)
    """Adapters from a response body to one output row."""
    output: dict[ColumnName, ColumnType] = Field(min_length=1)
    """Columns of each output row, after the response adapters."""
    batching: bool = False
    """If true, the endpoint takes a JSON list of requests and answers a list (auditc's runners do)."""

    @field_validator("request", "response", mode="before")
    @classmethod
    def _template_shorthand(cls, value: Any) -> Any:
        if isinstance(value, dict) and "kind" not in value:
            return [{"kind": "TransformJSON", "template": value}]
        return value


class InferenceServiceSpec(SpecModel):
    """The system under test: a runner serving a model over HTTP."""

    model: ResourceName | None = None
    """The Model it serves (required for python, huggingface and vllm runners)."""
    runner: Runner
    interface: Interface
    resources: Resources = Field(default_factory=Resources)

    @model_validator(mode="after")
    def _model_needed(self) -> InferenceServiceSpec:
        if self.runner.kind in ("python", "huggingface", "vllm") and self.model is None:
            raise ValueError(f"a '{self.runner.kind}' runner needs 'model'")
        return self


class InferenceService(_Resource):
    """An HTTP service that answers requests: the system under test."""

    kind: Literal["InferenceService"]
    spec: InferenceServiceSpec


class InferenceSessionSpec(SpecModel):
    """A running instance of a service, for interactive use."""

    service: ResourceName
    replicas: int = Field(default=1, ge=1, le=64)
    expires: Duration | None = None
    """Stop after this many seconds (recommended on clusters)."""


class InferenceSession(_Resource):
    """A long-running instance of an InferenceService (`auditc serve`)."""

    kind: Literal["InferenceSession"]
    spec: InferenceSessionSpec


# ------------------------------------------------------------------ Evaluation


class Timeouts(SpecModel):
    """Seconds."""

    request: Duration = DEFAULT_REQUEST_TIMEOUT
    """For one request, connect to last byte."""
    total: Duration = DEFAULT_TOTAL_TIMEOUT
    """For the whole evaluation."""
    ready: Duration | None = None
    """For the service to answer its health check before anything is sent (an `external`
    service without `health_path`: to answer at all). Default: 600 s for a server auditc
    starts (a model may take that long to load), 20 s for an `external` service (it is
    up or it is not)."""

    def ready_s(self, runner_kind: str) -> float:
        """`ready`, or its default for a service of `runner_kind`."""
        if self.ready is not None:
            return self.ready
        return (
            DEFAULT_EXTERNAL_READY_TIMEOUT if runner_kind == "external" else DEFAULT_READY_TIMEOUT
        )


class RetryPolicy(SpecModel):
    """Retries of connection errors, timeouts, 429 and 5xx, with exponential backoff and jitter."""

    max_attempts: int = Field(default=DEFAULT_MAX_ATTEMPTS, ge=1, le=100)
    """Attempts per request, the first included."""
    backoff_initial: Duration = 0.5
    backoff_max: Duration = 30.0


class ErrorPolicy(SpecModel):
    """What a row whose retries ran out does to the evaluation."""

    on_error: Literal["record", "abort"] = "record"
    """`record`: write the row with its error and go on; `abort`: stop the evaluation."""
    max_error_fraction: float = Field(default=DEFAULT_MAX_ERROR_FRACTION, ge=0.0, le=1.0)
    """The evaluation fails (after writing every row) if more rows than this fraction errored.
    Default 0: any row error fails it, since a score over the rows that happened to succeed
    is not the score of the dataset; allow a fraction on purpose (e.g. 0.01)."""


class AdaptiveConcurrency(SpecModel):
    """`concurrency: auto` within bounds: the client finds the level that keeps the server busy."""

    min: int = Field(default=1, ge=1, le=4096)
    """Fewest requests in flight (per shard)."""
    max: int = Field(default=DEFAULT_AUTO_CONCURRENCY_MAX, ge=1, le=4096)
    """Most requests in flight (per shard)."""
    start: int | None = Field(default=None, ge=1, le=4096)
    """Level to start from (default 4, within `min`..`max`)."""

    @model_validator(mode="after")
    def _ordered(self) -> AdaptiveConcurrency:
        if self.max < self.min:
            raise ValueError(f"max ({self.max}) must be >= min ({self.min})")
        if self.start is not None and not self.min <= self.start <= self.max:
            raise ValueError(
                f"start ({self.start}) must lie within min ({self.min}) and max ({self.max})"
            )
        return self


_MAX_CONCURRENCY = 4096


def _concurrency(value: Any) -> int | Literal["auto"] | AdaptiveConcurrency | None:
    """One clear error for `concurrency` (a plain union would report one per alternative)."""
    if value is None or value == "auto" or isinstance(value, AdaptiveConcurrency):
        return value  # type: ignore[no-any-return]
    if isinstance(value, int) and not isinstance(value, bool):
        if value < 1:
            raise PydanticKnownError("greater_than_equal", {"ge": 1})
        if value > _MAX_CONCURRENCY:
            raise PydanticKnownError("less_than_equal", {"le": _MAX_CONCURRENCY})
        return value
    if isinstance(value, dict):
        try:
            return AdaptiveConcurrency.model_validate(value)
        except ValidationError as exc:
            error = exc.errors(include_url=False)[0]
            where = ".".join(str(part) for part in error["loc"])
            raise PydanticCustomError(
                error["type"],
                "{where}{message}",
                {"where": f"{where}: " if where else "", "message": error["msg"]},
            ) from None
    raise PydanticCustomError(
        "concurrency_type",
        "expected a number of requests in flight (1 to {most}), 'auto', or a mapping of "
        "min, max and start",
        {"most": _MAX_CONCURRENCY},
    )


class ImportedResults(SpecModel):
    """Results another tool made, stored as an Evaluation's output instead of running it."""

    path: RelativePath
    """The log, relative to this YAML file: an Inspect AI log (`.eval`, or a `.json` log)."""
    format: Literal["inspect"] = "inspect"
    """`inspect`: Inspect AI's EvalLog. One output row per sample and epoch: `_index_` the
    sample's position in the log, `_replication_` its epoch - 1."""
    columns: dict[ColumnName, ColumnType] = Field(min_length=1)
    """The output columns to take from each sample, named as a Dataset of the log names
    them (`completion`, `score_<scorer>`, `model`, `target`, …; docs/specs.md)."""


_RUN_SETTINGS = (
    "replications",
    "concurrency",
    "batch_size",
    "max_response_bytes",
    "timeouts",
    "retries",
    "errors",
    "shards",
    "replicas",
)
"""What only an Evaluation that runs takes: an imported one sends nothing."""


class EvaluationSpec(SpecModel):
    """Every row of a Dataset through an InferenceService, `replications` times; or, with
    `imported`, the results of a run made elsewhere (an Inspect AI log)."""

    service: ResourceName | None = None
    """The InferenceService under test (required unless `imported`)."""
    dataset: ResourceName | None = None
    """The Dataset whose rows are sent (required unless `imported`; with `imported`, an
    optional Dataset of one row per sample of the log, in the log's order, checked when it runs)."""
    imported: ImportedResults | None = None
    """Take the output from a log another tool wrote instead of running anything."""
    replications: int = Field(default=1, ge=1, le=1000)
    concurrency: Annotated[
        int | Literal["auto"] | AdaptiveConcurrency | None,
        PlainValidator(
            _concurrency,
            json_schema_input_type=Annotated[int, Field(ge=1, le=4096)]
            | Literal["auto"]
            | AdaptiveConcurrency
            | None,
        ),
    ] = None
    """Requests in flight at once (per shard): a number pins it; `auto` (or `{min, max}`) adapts
    it to the server while the evaluation runs. Default: `auto` for `external` and `vllm`
    services, 64 for auditc's own runners."""
    batch_size: int = Field(default=DEFAULT_BATCH_SIZE, ge=1, le=4096)
    """Rows per request; above 1 needs `interface.batching`."""
    max_response_bytes: int = Field(default=DEFAULT_MAX_RESPONSE_BYTES, ge=1024, le=2**31)
    """Largest response body accepted per row of a request (a batched response of n rows may be
    n times as large); a larger answer is recorded as a `too-large` row error."""
    timeouts: Timeouts = Field(default_factory=Timeouts)
    retries: RetryPolicy = Field(default_factory=RetryPolicy)
    errors: ErrorPolicy = Field(default_factory=ErrorPolicy)
    shards: int = Field(default=1, ge=1, le=1024)
    """Disjoint slices run in parallel (pods of an Indexed Job on Kubernetes)."""
    replicas: int = Field(default=1, ge=1, le=64)
    """Server replicas (local: processes)."""

    @model_validator(mode="after")
    def _runs_or_imports(self) -> EvaluationSpec:
        if self.imported is not None:
            if self.service is not None:
                raise ValueError(
                    "an imported Evaluation runs no service: set either 'service' (and "
                    "'dataset') or 'imported', not both"
                )
            fields = type(self).model_fields
            extra = [
                name
                for name in _RUN_SETTINGS
                if getattr(self, name) != fields[name].get_default(call_default_factory=True)
            ]
            if extra:
                raise ValueError(
                    f"an imported Evaluation sends nothing, so it takes no {', '.join(extra)}; "
                    "remove them"
                )
        elif self.service is None or self.dataset is None:
            missing = " and ".join(
                f"'{n}'" for n in ("service", "dataset") if getattr(self, n) is None
            )
            raise ValueError(
                f"missing {missing}: an Evaluation sends a Dataset through an InferenceService "
                "(or takes its output from a log with 'imported')"
            )
        return self


class Evaluation(_Resource):
    """Runs a dataset through a service; its output is an Arrow dataset."""

    kind: Literal["Evaluation"]
    spec: EvaluationSpec


# ---------------------------------------------------------------------- Module


class ModuleSpec(SpecModel):
    """A directory of Python code put on PYTHONPATH for methods and python models."""

    path: RelativePath
    """The directory, relative to this YAML file. Its content is hashed into node ids."""


class Module(_Resource):
    """Python code used by methods (and python-runner models)."""

    kind: Literal["Module"]
    spec: ModuleSpec


# ---------------------------------------------------------------------- Method


class MethodImplementation(SpecModel):
    """Exactly one of `python` and `notebook`."""

    python: str | None = Field(default=None, pattern=_CALLABLE)
    """`module:function`, importable from the method's modules."""
    notebook: RelativePath | None = None
    """A Jupyter notebook, relative to this YAML file; it is run with papermill."""

    @model_validator(mode="after")
    def _one(self) -> MethodImplementation:
        if (self.python is None) == (self.notebook is None):
            raise ValueError("set exactly one of 'python' and 'notebook'")
        return self


class MethodInput(SpecModel):
    """One input of a method: a Dataset, Evaluation or Measurement (a Method's output)."""

    resource: ResourceName
    """Name of the Dataset, Evaluation, or Method producing a Measurement."""
    kind: Literal["Dataset", "Evaluation", "Measurement"] | None = None
    """Expected kind; checked against what `resource` names."""
    columns: list[ColumnName] = Field(default_factory=list)
    """Columns the method reads; checked against what the input provides."""


class Gate(SpecModel):
    """A pass condition on a score; `auditc check` fails when it does not hold.

    With `confidence`, the gate judges the score's confidence interval instead of its
    value: PASS when the interval lies within the bounds, FAIL when it lies wholly
    outside them, INCONCLUSIVE otherwise.
    """

    min: float | None = None
    max: float | None = None
    confidence: float | None = Field(default=None, ge=0.5, lt=1)
    """A two-sided confidence level (`0.95`); the score then needs per-instance values
    (or an interval) so that its interval can be computed."""

    @model_validator(mode="after")
    def _bounds(self) -> Gate:
        if self.min is None and self.max is None:
            raise ValueError("a gate needs 'min', 'max' or both")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"gate min ({self.min}) must be <= max ({self.max})")
        return self


class ScoreSpec(SpecModel):
    """A named scalar a method exports."""

    name: str = Field(pattern=r"^[a-z][a-z0-9_]{0,63}$")
    title: str | None = Field(default=None, max_length=200)
    summary: str | None = Field(default=None, max_length=1000)
    valence: Literal["positive", "negative", "neutral"] = "neutral"
    """`positive`: higher is better; `negative`: lower is better."""
    primary: bool = False
    """The headline score; a method with scores has exactly one."""
    minimum: float | None = None
    maximum: float | None = None
    unit: str | None = Field(default=None, max_length=32)
    format: str = "{value:.3g}"
    """A Python format string over `value` (`{value:.1%}`)."""
    gate: Gate | None = None
    aggregate: ScoreAggregate | None = None
    """How the value aggregates its per-instance values (default: their mean); intervals
    and `auditc diff` recompute the score this way over resampled instances."""

    @field_validator("format")
    @classmethod
    def _format_ok(cls, value: str) -> str:
        return check_score_format(value)

    @model_validator(mode="after")
    def _range(self) -> ScoreSpec:
        if self.minimum is not None and self.maximum is not None and self.minimum > self.maximum:
            raise ValueError(f"minimum ({self.minimum}) must be <= maximum ({self.maximum})")
        return self


class MethodOutput(SpecModel):
    """What the method produces."""

    kind: Literal["Measurement", "SafetyCase"]
    columns: dict[ColumnName, ColumnType] = Field(default_factory=dict)
    """Measurement columns, checked against what the function returns (default: not checked)."""
    level: Literal["dataset", "instance"] = "dataset"
    """`instance` measurements have one row per `_index_` and must include it."""


class MethodSpec(SpecModel):
    """An analysis: a Python function (→ Measurement) or a notebook (→ SafetyCase)."""

    implementation: MethodImplementation
    inputs: dict[str, MethodInput] = Field(min_length=1)
    """Keyword → input. A string is shorthand for `{resource: <name>}`."""
    parameters: dict[str, Any] = Field(default_factory=dict)
    """Passed as keyword arguments (functions) or papermill parameters (notebooks)."""
    modules: list[ResourceName] = Field(default_factory=list)
    """Modules put on PYTHONPATH."""
    output: MethodOutput
    scores: list[ScoreSpec] = Field(default_factory=list)
    timeout: Duration = 1800.0
    """Seconds before the method is stopped and fails."""

    @field_validator("inputs", mode="before")
    @classmethod
    def _input_shorthand(cls, value: Any) -> Any:
        if isinstance(value, dict):
            return {k: {"resource": v} if isinstance(v, str) else v for k, v in value.items()}
        return value

    @field_validator("inputs")
    @classmethod
    def _keywords(cls, value: dict[str, MethodInput]) -> dict[str, MethodInput]:
        for key in value:
            if not key.isidentifier():
                raise ValueError(f"input keyword {key!r} is not a Python identifier")
        return value

    @model_validator(mode="after")
    def _scores(self) -> MethodSpec:
        names = [s.name for s in self.scores]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"duplicate score names: {', '.join(dupes)}")
        primaries = [s.name for s in self.scores if s.primary]
        if self.scores and len(primaries) != 1:
            raise ValueError(f"exactly one score must be primary (found {len(primaries)})")
        if self.implementation.notebook and self.output.kind != "SafetyCase":
            raise ValueError("a notebook method's output kind must be 'SafetyCase'")
        if self.implementation.python and self.output.kind != "Measurement":
            raise ValueError("a python method's output kind must be 'Measurement'")
        if self.scores and self.output.kind != "SafetyCase":
            raise ValueError("only SafetyCase methods export scores")
        return self


class Method(_Resource):
    """An analysis of datasets, evaluations and measurements."""

    kind: Literal["Method"]
    spec: MethodSpec


AnyResource = Annotated[
    Dataset | Model | InferenceService | InferenceSession | Evaluation | Module | Method,
    Field(discriminator="kind"),
]
"""Any resource, chosen by its `kind`."""

KINDS: tuple[str, ...] = (
    "Dataset",
    "Model",
    "Module",
    "InferenceService",
    "InferenceSession",
    "Evaluation",
    "Method",
)
"""Every kind, in the order reports and references list them."""

WORKFLOW_KINDS: frozenset[str] = frozenset({"Dataset", "Evaluation", "Method"})
"""Kinds that run and write outputs to the store; the others are configuration."""
