"""Reading results out of a store: current safety cases, their lineage and systems under test.

This is the hand-off from the store to `report`, `diff` and `check`. `load_results`
returns `StoreResults`: the safety cases shown by default, grouped into `Audit`s by
their Method name, each with the systems under test found through the manifests'
`upstream` maps, and every other run (older or failed) for the provenance page.

Which runs are shown: for each Method name and system under test, the complete run
that finished last. Systems are compared across runs of the same Method, so a store
that holds a safety case for several services shows one column per service; a re-run
for the same service replaces the older one, which stays listed as superseded.

Reads manifests and `scores.json` only; Parquet is read on demand (`read_table`,
`read_instances`).
"""

from __future__ import annotations

import logging
import posixpath
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from schemas import (
    INDEX_COLUMN,
    WORKFLOW_KINDS,
    Manifest,
    ScoreAggregate,
    ScoresFile,
    ScoreValue,
    Store,
    StoreError,
    case_file,
    node_path,
)

if TYPE_CHECKING:
    import pyarrow as pa

    from compiler._resolve import Graph

__all__ = [
    "INSTANCES_DIR",
    "NO_SYSTEM",
    "Audit",
    "NodeRef",
    "RunChoice",
    "SafetyCase",
    "Scope",
    "StoreIndex",
    "StoreResults",
    "System",
    "cases_by_ref",
    "gate_text",
    "load_results",
    "node_anchor",
    "read_instances",
    "read_table",
    "scope_of",
    "verify_cases",
]

logger = logging.getLogger(__name__)

SERVICE_KIND = "InferenceService"
MODEL_KIND = "Model"
RunChoice = int | Literal["previous"]
"""Which recorded run of a node id: its number (`Manifest.run`), or the one before the current."""
INSTANCES_DIR = case_file("instances")
"""`_case/instances/<score>.parquet` in a safety case's node directory (docs/contracts.md)."""
NO_SYSTEM = "(no system under test)"
"""The label of a safety case with no InferenceService upstream (a dataset-only analysis)."""


@dataclass(frozen=True, order=True)
class NodeRef:
    """One entry of a manifest's `upstream` map: `Kind/name` → id."""

    kind: str
    name: str
    id: str

    @property
    def key(self) -> str:
        """`Kind/name`."""
        return f"{self.kind}/{self.name}"

    @classmethod
    def of(cls, manifest: Manifest) -> NodeRef:
        """The reference to a manifest's own node."""
        return cls(manifest.kind, manifest.name, manifest.id)


def node_anchor(kind: str, name: str, node_id: str) -> str:
    """The HTML id of a node's entry on the provenance page."""
    return f"node-{kind.lower()}-{name}-{node_id}"


def gate_text(score: ScoreValue) -> str | None:
    """The gate in the score's own format: `≤ 10.0%`, `≥ 0.8`, `between 1 and 2 ms`,
    followed by `at 95% confidence` for a confidence gate."""

    if score.gate_min is not None and score.gate_max is not None:
        text = f"between {score.formatted(score.gate_min)} and {score.formatted(score.gate_max)}"
    elif score.gate_min is not None:
        text = f"≥ {score.formatted(score.gate_min)}"
    elif score.gate_max is not None:
        text = f"≤ {score.formatted(score.gate_max)}"
    else:
        return None
    if score.gate_confidence is not None:
        text += f" at {score.gate_confidence:.0%} confidence"
    return text


def _upstream_refs(manifest: Manifest) -> list[NodeRef]:
    refs: list[NodeRef] = []
    for key, node_id in manifest.upstream.items():
        kind, _, name = key.partition("/")
        if not name:
            logger.warning("%s: ignoring upstream entry %r (expected Kind/name)", key, key)
            continue
        refs.append(NodeRef(kind, name, node_id))
    return refs


@dataclass(frozen=True, order=True)
class System:
    """A system under test: an InferenceService and the Model it serves."""

    service: str
    service_id: str
    model: str | None = None
    model_id: str | None = None
    model_revision: str | None = None
    version: str | None = None
    """The declared version of an external service (`runner.version`), as the run recorded it."""
    fingerprint: str | None = None
    """What the run measured of an external service to recognise it later."""

    @property
    def label(self) -> str:
        """The service name: how tables and charts name the system."""
        return self.service


@dataclass(frozen=True)
class SafetyCase:
    """One complete safety case run with its scores, lineage and systems under test."""

    manifest: Manifest
    scores: ScoresFile
    systems: tuple[System, ...]
    lineage: tuple[Manifest, ...]
    """Every upstream workflow node found in the store, nearest first."""
    missing: tuple[NodeRef, ...] = ()
    """Upstream workflow nodes whose manifests are not in the store."""
    run_path: str | None = None
    """The directory of an earlier run (`<node>/_runs/<n>`); None for the node's current run."""

    @property
    def run(self) -> int:
        """Which run of its node id this is (1 for the first)."""
        return self.manifest.run

    @property
    def method(self) -> str:
        """The Method name: the audit this safety case belongs to."""
        return self.manifest.name

    @property
    def id(self) -> str:
        """The node id."""
        return self.manifest.id

    @property
    def path(self) -> str:
        """The run's directory relative to the store root: the node's, or an earlier run's."""
        if self.run_path is not None:
            return self.run_path
        return node_path(self.manifest.kind, self.manifest.name, self.manifest.id)

    @property
    def system_label(self) -> str:
        """The names of its services, joined with ` + `."""
        names = sorted({s.service for s in self.systems})
        return " + ".join(names) if names else NO_SYSTEM

    @property
    def measurements(self) -> tuple[Manifest, ...]:
        """The Measurement nodes it was computed from (directly or not)."""
        return tuple(m for m in self.lineage if m.output_kind == "Measurement")

    def score(self, name: str) -> ScoreValue | None:
        """The exported score named `name`, if this run has it."""
        return next((s for s in self.scores.scores if s.name == name), None)


@dataclass(frozen=True)
class Audit:
    """Every shown safety case of one Method, one per system under test."""

    method: str
    cases: tuple[SafetyCase, ...]

    def score_names(self) -> list[str]:
        """Every score name any system exported: primary first, then in the order declared."""
        names: list[str] = []
        primary: list[str] = []
        for case in self.cases:
            for score in case.scores.scores:
                target = primary if score.primary else names
                if score.name not in names and score.name not in primary:
                    target.append(score.name)
        return primary + names

    def spec_of(self, name: str) -> ScoreValue:
        """The score as the most recent run declares it (title, valence, format, gate)."""
        newest = sorted(self.cases, key=lambda c: c.manifest.finished_at, reverse=True)
        for case in newest:
            found = case.score(name)
            if found is not None:
                return found
        raise KeyError(name)


class StoreIndex:
    """Every manifest of a store, looked up by node."""

    def __init__(self, store: Store, manifests: Iterable[Manifest]) -> None:
        self.store = store
        self.manifests: tuple[Manifest, ...] = tuple(manifests)
        self._by_ref = {NodeRef.of(m): m for m in self.manifests}

    @classmethod
    def read(cls, store: Store) -> StoreIndex:
        """Read every manifest of `store`.

        Raises:
            StoreError: a manifest is unreadable or of another schema version.
        """
        return cls(store, store.manifests())

    def get(self, ref: NodeRef) -> Manifest | None:
        """The manifest of a node, if the store holds it."""
        return self._by_ref.get(ref)

    def lineage(self, root: Manifest) -> tuple[list[Manifest], list[NodeRef], list[NodeRef]]:
        """Walk `upstream` maps breadth-first from `root`.

        Returns:
            The upstream workflow manifests (nearest first), the configuration nodes
            met on the way (InferenceService, Model, Module), and the workflow nodes
            whose manifests the store lacks.
        """
        found: list[Manifest] = []
        configs: list[NodeRef] = []
        missing: list[NodeRef] = []
        seen: set[NodeRef] = {NodeRef.of(root)}
        queue = deque(_upstream_refs(root))
        while queue:
            ref = queue.popleft()
            if ref in seen:
                continue
            seen.add(ref)
            if ref.kind not in WORKFLOW_KINDS:
                configs.append(ref)
                continue
            manifest = self.get(ref)
            if manifest is None:
                missing.append(ref)
                continue
            found.append(manifest)
            queue.extend(_upstream_refs(manifest))
        return found, configs, missing

    def safety_case(self, manifest: Manifest, run_path: str | None = None) -> SafetyCase:
        """A safety case with its scores, lineage and systems.

        Args:
            manifest: The run's manifest.
            run_path: The directory of an earlier run (`<node>/_runs/<n>`), if it is one.

        Raises:
            StoreError: its `scores.json` is missing or invalid.
        """
        path = run_path or node_path(manifest.kind, manifest.name, manifest.id)
        scores = self.store.read_scores(path, manifest)
        lineage, configs, missing = self.lineage(manifest)
        systems = _systems(lineage, configs)
        return SafetyCase(manifest, scores, systems, tuple(lineage), tuple(missing), run_path)

    def run_of(self, case: SafetyCase, run: RunChoice) -> SafetyCase | str:
        """Another recorded run of a safety case's node id (`auditc run --force` keeps them).

        Args:
            case: The safety case (its current run).
            run: A run number, or `previous` for the run before the current one.

        Returns:
            That run, or why there is none (named for the user).

        Raises:
            StoreError: a run's manifest or scores are unreadable.
        """
        node = node_path(case.manifest.kind, case.manifest.name, case.manifest.id)
        runs = self.store.node_runs(node)
        if run == "previous":
            earlier = [r for r in runs if not r.current]
            chosen = earlier[-1] if earlier else None
        else:
            chosen = next((r for r in runs if r.run == run), None)
        where = f"Method/{case.method} {case.id[:10]}"
        numbers = ", ".join(str(r.run) for r in runs)
        if chosen is None:
            return f"{where} has no {'earlier run' if run == 'previous' else f'run {run}'} (runs: {numbers})"
        if chosen.manifest.status != "complete":
            return f"{where}: run {chosen.run} did not complete ({chosen.manifest.status})"
        if chosen.current:
            return case
        return self.safety_case(chosen.manifest, chosen.path)


def _systems(lineage: list[Manifest], configs: list[NodeRef]) -> tuple[System, ...]:
    """The services under test, each with the Model its Evaluation's manifest names."""
    systems: dict[tuple[str, str], System] = {}
    for manifest in lineage:
        if manifest.kind != "Evaluation":
            continue
        refs = _upstream_refs(manifest)
        models = [r for r in refs if r.kind == MODEL_KIND]
        # An Evaluation has exactly one service, so the Models it lists are that service's.
        model = models[0] if models else None
        for ref in refs:
            if ref.kind == SERVICE_KIND and (ref.name, ref.id) not in systems:
                systems[(ref.name, ref.id)] = System(
                    ref.name,
                    ref.id,
                    model.name if model else None,
                    model.id if model else None,
                    manifest.model_revision,
                    # Recorded by evaluations of external services (optional manifest fields).
                    _text(getattr(manifest, "service_version", None)),
                    _text(getattr(manifest, "service_fingerprint", None)),
                )
    for ref in configs:
        if ref.kind == SERVICE_KIND and (ref.name, ref.id) not in systems:
            systems[(ref.name, ref.id)] = System(ref.name, ref.id)
    return tuple(sorted(systems.values()))


@dataclass(frozen=True)
class Scope:
    """Which runs of a store to read: those of the current specs, not the whole store.

    Built from a resolved graph (`scope_of`). `report` and `check` read exactly the
    safety-case nodes of the specs (by id); a comparison of two stores reads, on each
    side, the latest runs of the safety-case Methods the specs name.
    """

    cases: Mapping[NodeRef, tuple[str, ...]]
    """Every safety-case node of the specs → the names of its gated scores."""
    keys: frozenset[str]
    """`Kind/name` of every workflow node of the specs (for the older runs listed)."""
    description: str = "the specs"

    @property
    def methods(self) -> frozenset[str]:
        """The names of the safety-case Methods."""
        return frozenset(ref.name for ref in self.cases)


def _text(value: object) -> str | None:
    return None if value is None else str(value)


@dataclass(frozen=True)
class StoreResults:
    """What a store holds, as `report` and `check` show it."""

    store: Store
    index: StoreIndex
    audits: tuple[Audit, ...]
    """By Method name."""
    superseded: tuple[Manifest, ...]
    """Runs not shown: older complete runs and failed runs, newest first."""
    not_run: tuple[NodeRef, ...] = ()
    """Safety cases of the scope that the store holds no complete run of."""
    scope: Scope | None = None
    """None: the whole store."""
    unavailable: tuple[str, ...] = ()
    """Safety cases left out because the run asked for (`--run`) is not recorded."""

    @property
    def cases(self) -> list[SafetyCase]:
        """Every shown safety case, audit by audit."""
        return [case for audit in self.audits for case in audit.cases]

    def systems(self) -> list[System]:
        """Every system under test of a shown safety case."""
        return sorted({s for case in self.cases for s in case.systems})

    def current(self) -> list[Manifest]:
        """The shown safety cases and every node upstream of them, dependencies first."""
        seen: dict[NodeRef, Manifest] = {}
        for case in self.cases:
            for manifest in (*reversed(case.lineage), case.manifest):
                seen.setdefault(NodeRef.of(manifest), manifest)
        return list(seen.values())


def scope_of(graph: Graph, description: str = "the specs") -> Scope:
    """The scope of a resolved graph: its safety-case nodes and workflow keys."""
    cases: dict[NodeRef, tuple[str, ...]] = {}
    for node in graph:
        if node.output_kind == "SafetyCase":
            specs = getattr(node.resource.spec, "scores", [])
            gated = tuple(s.name for s in specs if s.gate is not None)
            cases[NodeRef(node.kind, node.name, node.id)] = gated
    keys = frozenset(node.key for node in graph if node.is_workflow)
    return Scope(cases, keys, description)


def load_results(
    store: Store,
    scope: Scope | None = None,
    *,
    by_method: bool = False,
    run: RunChoice | None = None,
) -> StoreResults:
    """Select the safety cases to show.

    Args:
        store: The store to read.
        scope: The current specs' nodes; None reads the whole store.
        by_method: Read the latest complete run of each of the scope's Methods (per
            system) instead of its exact nodes — for comparing two stores, whose runs of
            the same specs may have other ids.
        run: Show another recorded run of each safety case's node id than its current
            one: a run number, or `previous`. Cases without it are left out and named
            in `unavailable`.

    Returns:
        The audits (by Method name), every run not shown (within the scope), and the
        scope's safety cases the store has no complete run of.

    Raises:
        StoreError: a manifest or `scores.json` is unreadable.
    """
    index = StoreIndex.read(store)
    complete = [m for m in index.manifests if _is_complete_case(m)]
    if scope is not None and not by_method:
        chosen = [m for m in complete if NodeRef.of(m) in scope.cases]
    elif scope is not None:
        chosen = [m for m in complete if m.name in scope.methods]
    else:
        chosen = complete
    latest: dict[tuple[str, str], SafetyCase] = {}
    for manifest in _newest_first(chosen):
        case = index.safety_case(manifest)
        latest.setdefault((case.method, case.system_label), case)
    unavailable: list[str] = []
    if run is not None:
        latest, unavailable = _runs_of(index, latest, run)
    shown = {NodeRef.of(c.manifest) for c in latest.values()}
    for case in latest.values():
        shown.update(NodeRef.of(m) for m in case.lineage)
    verify_cases(store, latest.values())
    audits = _group_audits(latest.values())
    others = [m for m in index.manifests if NodeRef.of(m) not in shown]
    if scope is not None:
        others = [m for m in others if f"{m.kind}/{m.name}" in scope.keys]
    not_run: tuple[NodeRef, ...] = ()
    if scope is not None and not by_method:
        not_run = tuple(sorted(ref for ref in scope.cases if ref not in shown))
    return StoreResults(
        store, index, audits, tuple(_newest_first(others)), not_run, scope, tuple(unavailable)
    )


def _runs_of(
    index: StoreIndex, cases: dict[tuple[str, str], SafetyCase], run: RunChoice
) -> tuple[dict[tuple[str, str], SafetyCase], list[str]]:
    found: dict[tuple[str, str], SafetyCase] = {}
    unavailable: list[str] = []
    for key, case in cases.items():
        other = index.run_of(case, run)
        if isinstance(other, str):
            unavailable.append(other)
        else:
            found[key] = other
    return found, unavailable


def verify_cases(store: Store, cases: Iterable[SafetyCase]) -> None:
    """Check the files of each safety case and of every node upstream of it against their
    manifests, before anything is read from them.

    Raises:
        IntegrityError: a node's files do not match its manifest (node and files named).
    """
    checked: set[NodeRef] = set()
    for case in cases:
        for manifest in (case.manifest, *case.lineage):
            ref = NodeRef.of(manifest)
            if ref not in checked or manifest is case.manifest:
                checked.add(ref)
                path = case.path if manifest is case.manifest else None
                store.verify_node(path or node_path(ref.kind, ref.name, ref.id), manifest)


def _is_complete_case(manifest: Manifest) -> bool:
    return manifest.status == "complete" and manifest.output_kind == "SafetyCase"


def _newest_first(manifests: Iterable[Manifest]) -> list[Manifest]:
    return sorted(manifests, key=lambda m: (m.finished_at, m.id), reverse=True)


def _group_audits(cases: Iterable[SafetyCase]) -> tuple[Audit, ...]:
    by_method: dict[str, list[SafetyCase]] = {}
    for case in cases:
        by_method.setdefault(case.method, []).append(case)
    return tuple(
        Audit(method, tuple(sorted(found, key=lambda c: c.system_label)))
        for method, found in sorted(by_method.items())
    )


# ---------------------------------------------------------------- Parquet


def read_table(store: Store, manifest: Manifest) -> pa.Table:
    """A node's rows (Dataset, Evaluation, Measurement) as one Arrow table.

    Raises:
        StoreError: the node has no data parts or they cannot be read.
    """
    path = node_path(manifest.kind, manifest.name, manifest.id)
    try:
        return store.open_dataset(path).to_table()
    except StoreError:
        raise
    except (OSError, ValueError) as exc:  # pyarrow's ArrowInvalid is a ValueError
        raise StoreError(f"cannot read the data of {store.uri_of(path)}: {exc}") from exc


def read_instances(
    store: Store, case: SafetyCase, score: str, aggregate: ScoreAggregate | None = None
) -> pa.Table | None:
    """Per-instance values of a score (`instances/<score>.parquet`): one row per `_index_`.

    Rows with a null value are dropped, and repeated `_index_` values (replications)
    are averaged so that every instance weighs the same in a paired comparison (a
    group column keeps its first value).

    Returns:
        A table of `_index_` (int64), `value` (float64) and the columns `aggregate`
        names, or None when the safety case stored no per-instance values for this score.

    Raises:
        StoreError: the file is unreadable or lacks the columns.
    """
    relative = posixpath.join(INSTANCES_DIR, f"{score}.parquet")
    if not store.exists(case.path, relative):
        return None
    import pyarrow as pa
    import pyarrow.parquet as pq

    where = store.uri_of(case.path, relative)
    try:
        table = pq.read_table(store.path(case.path, relative), filesystem=store.fs)
    except (OSError, ValueError) as exc:  # pyarrow's ArrowInvalid is a ValueError
        raise StoreError(f"cannot read {where}: {exc}") from exc
    group = aggregate.group if aggregate else None
    denominator = aggregate.denominator if aggregate else None
    fields = [(INDEX_COLUMN, pa.int64()), ("value", pa.float64())]
    fields += [(denominator, pa.float64())] if denominator else []
    fields += [(group, pa.string())] if group else []
    missing = {name for name, _ in fields} - set(table.column_names)
    if missing:
        raise StoreError(
            f"{where}: expected columns {', '.join(repr(n) for n, _ in fields)}, "
            f"found {', '.join(table.column_names) or 'none'}"
        )
    try:
        table = table.select([n for n, _ in fields]).cast(pa.schema(fields))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise StoreError(f"{where}: '_index_' must be integers, 'value' numbers: {exc}") from exc
    table = table.drop_null()
    means = [("value", "mean")] + ([(denominator, "mean")] if denominator else [])
    firsts = [(group, "first")] if group else []
    grouped = table.group_by(INDEX_COLUMN, use_threads=False).aggregate(means + firsts)
    names = [n for n, _ in fields]
    grouped = grouped.select([INDEX_COLUMN] + [f"{n}_{how}" for n, how in means + firsts])
    order = [INDEX_COLUMN] + [n for n, _ in means + firsts]
    return grouped.rename_columns(order).select(names).sort_by(INDEX_COLUMN)


def cases_by_ref(
    index: StoreIndex, refs: Mapping[str, NodeRef], run: RunChoice | None = None
) -> dict[str, SafetyCase | str | None]:
    """Safety cases named by node reference (e.g. from a resolved graph), by Method name.

    Args:
        index: The store's manifests.
        refs: Method name → node.
        run: Another recorded run than the current one (a number, or `previous`).

    Returns:
        Method name → its safety case, None when the store has no complete run of that
        id, or why the run asked for is not there.
    """
    found: dict[str, SafetyCase | str | None] = {}
    for method, ref in refs.items():
        manifest = index.get(ref)
        if manifest is not None and manifest.status == "complete":
            case = index.safety_case(manifest)
            found[method] = case if run is None else index.run_of(case, run)
        else:
            found[method] = None
    verify_cases(index.store, (case for case in found.values() if isinstance(case, SafetyCase)))
    return found
