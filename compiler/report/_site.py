"""The static site: `StoreResults` → HTML pages, charts and copied safety cases in a directory.

Layout of the site (every link relative, no network access, opens from the file system):

```
index.html                 audits and systems under test, gate summary
audit-<method>.html        score table across systems, score charts, per-group breakdowns
case-<method>-<id>.html    one safety case: its scores, provenance link, the rendered page in a frame
cases/<id>/index.html      the safety case's own page, copied from the store
provenance.html            every run: id, inputs, model revision, auditc version, git commit, times
style.css
```

Pages are Jinja2 templates with autoescaping on; only the charts (SVG that matplotlib
drew) are marked safe.
"""

from __future__ import annotations

import json
import logging
import math
import re
import shutil
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from importlib import resources
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import TYPE_CHECKING, Any

from schemas import (
    CASE_HTML_FILE,
    GateOutcome,
    Manifest,
    ScoreValue,
    Store,
    UsageError,
    case_file,
    node_path,
)

from . import _plots

if TYPE_CHECKING:
    from .._attest import Attestation
from ._breakdowns import GroupTable, group_table
from ._results import (
    Audit,
    NodeRef,
    SafetyCase,
    StoreResults,
    System,
    gate_text,
    node_anchor,
    read_table,
)

__all__ = ["SITE_MARKER", "Site", "build_site", "gate_text", "sanitize_case_html"]

logger = logging.getLogger(__name__)

SITE_MARKER = ".auditc-site"
"""Written into every site; `build_site` only empties a non-empty directory that has it."""
CASE_HTML = "index.html"
PROVENANCE_PAGE = "provenance.html"
VALENCE_TEXT = {
    "positive": ("↑", "higher is better"),
    "negative": ("↓", "lower is better"),
    "neutral": ("", "no better direction"),
}
CASE_CSP = (
    "default-src 'none'; img-src data: blob:; style-src 'unsafe-inline' data:; font-src data:"
)
"""Put into every copied safety case: it runs no script at all and fetches nothing.

A safety case shows data (group names, model outputs) through Markdown and HTML
outputs, which a browser would otherwise execute; a script there could rewrite the
verdict a reader sees. No page of the report needs a script, so none may run."""
CASE_SANDBOX = "allow-popups allow-popups-to-escape-sandbox"
"""The iframe of a case page: no `allow-scripts` (nothing in a safety case needs one) and
no `allow-same-origin`; links may still open in a new tab."""


@dataclass(frozen=True)
class Site:
    """What `build_site` wrote."""

    out_dir: Path
    pages: list[str]
    """Relative paths of the HTML pages."""
    audits: int
    systems: int
    cases: int
    gates_failed: int
    gates_inconclusive: int = 0

    @property
    def index(self) -> Path:
        """The site's entry page."""
        return self.out_dir / "index.html"


def build_site(results: StoreResults, out_dir: Path) -> Site:
    """Write the static site of a store's results into `out_dir`.

    Args:
        results: What `load_results` read from the store.
        out_dir: The site directory: created, or emptied if an earlier `build_site` wrote it.

    Returns:
        What was written.

    Raises:
        UsageError: `out_dir` is a file, or a non-empty directory that is not a site.
        StoreError: a safety case, manifest or measurement in the store is unreadable.
    """
    _prepare(out_dir)
    builder = _Builder(results, out_dir)
    pages = builder.build()
    (out_dir / SITE_MARKER).write_text(
        "built by auditc report; this directory is replaced on rebuild\n"
    )
    outcomes = [s.gate() for c in results.cases for s in c.scores.scores]
    return Site(
        out_dir,
        pages,
        len(results.audits),
        len(results.systems()),
        len(results.cases),
        outcomes.count("fail"),
        outcomes.count("inconclusive"),
    )


def _prepare(out_dir: Path) -> None:
    if out_dir.exists() and not out_dir.is_dir():
        raise UsageError(f"--out {out_dir} is a file; expected a directory for the site")
    if out_dir.is_dir() and any(out_dir.iterdir()):
        if not (out_dir / SITE_MARKER).exists():
            raise UsageError(
                f"--out {out_dir} is not empty and was not written by `auditc report`; "
                "choose a new directory or empty it"
            )
        for child in out_dir.iterdir():
            if child.is_dir() and not child.is_symlink():
                shutil.rmtree(child)
            else:
                child.unlink()
    out_dir.mkdir(parents=True, exist_ok=True)


# ------------------------------------------------------------------ views


@dataclass(frozen=True)
class Cell:
    """One system's value of one score."""

    system: str
    text: str
    value: float | None
    rank: str | None
    gate: GateOutcome | None
    href: str
    title: str
    note: str | None = None
    """The sentence the method wrote about this value."""
    interval: str | None = None
    """`[5.1%, 12.0%]`, when the run stored a confidence interval."""
    interval_title: str | None = None


@dataclass(frozen=True)
class ScoreRow:
    """One score across the systems of an audit."""

    name: str
    title: str
    summary: str | None
    primary: bool
    arrow: str
    direction: str
    unit: str | None
    gate: str | None
    cells: list[Cell]


@dataclass(frozen=True)
class Chart:
    """An inline SVG with the runs it was drawn from."""

    title: str
    svg: Any
    caption: str
    sources: list[tuple[str, str]]
    """(label, provenance link) of each run."""


@dataclass
class AuditView:
    """One audit (a Method) for the templates."""

    method: str
    href: str
    title: str | None
    summary: str | None
    cases: list[CaseView]
    rows: list[ScoreRow]
    charts: list[Chart] = field(default_factory=list)
    breakdowns: list[BreakdownView] = field(default_factory=list)

    @property
    def primary(self) -> ScoreRow | None:
        """The headline score."""
        return next((r for r in self.rows if r.primary), self.rows[0] if self.rows else None)

    @property
    def gates(self) -> tuple[int, int, int]:
        """(passed, failed, inconclusive) over every gated score of every system."""
        states = [c.gate for r in self.rows for c in r.cells]
        return states.count("pass"), states.count("fail"), states.count("inconclusive")


@dataclass(frozen=True)
class CaseView:
    """One safety case for the templates."""

    method: str
    id: str
    system: str
    systems: tuple[System, ...]
    href: str
    page: str | None
    """The copied rendered page, relative to the site root; None when the run wrote none."""
    provenance: str
    finished_at: str
    git_commit: str | None
    auditc_version: str
    rows: list[ScoreRow]
    question: str | None = None
    """The audit's question: the Method's documentation title."""
    summary: str | None = None
    datasets: list[tuple[str, str, str, str]] = field(default_factory=list)
    """(Dataset name, node id, file, sha256) of every dataset the case was computed from."""

    @property
    def primary(self) -> ScoreRow | None:
        """The headline score of this safety case."""
        return next((r for r in self.rows if r.primary), self.rows[0] if self.rows else None)

    signed_by: list[Attestation] = field(default_factory=list)
    """Who signed the safety case's files and provenance, and how many files."""
    source: str = ""
    """The run's directory in the store (the node's, or `<node>/_runs/<n>` for an earlier run)."""
    run: int = 1
    """Which recorded run of its node id this is."""
    current: bool = True
    """Whether it is the node's current run (not one an `auditc run --force` replaced)."""


@dataclass(frozen=True)
class BreakdownView:
    """A Measurement's per-group values across systems."""

    measurement: str
    group_column: str
    groups: list[str]
    columns: list[str]
    charts: list[Chart]
    table: list[list[str]]
    header: list[str]


@dataclass(frozen=True)
class NodeView:
    """One run on the provenance page."""

    manifest: Manifest
    anchor: str
    output_kind: str
    upstream: list[tuple[str, str, str | None]]
    """(Kind/name, id, link or None when the store lacks it)."""
    spec_json: str
    used_by: list[str]
    signed_by: list[Attestation] = field(default_factory=list)
    """Who signed the node's files and provenance (check them with `auditc verify --key`
    or `--identity`)."""
    earlier_runs: list[Manifest] = field(default_factory=list)
    """Runs of the same node id that an `auditc run --force` replaced, oldest first."""


# ---------------------------------------------------------------- builder


class _Builder:
    def __init__(self, results: StoreResults, out_dir: Path) -> None:
        self.results = results
        self.out = out_dir
        self.env = _environment()
        self.chart_seq = 0

    def build(self) -> list[str]:
        audits = [self._audit(a) for a in self.results.audits]
        copied = self._copy_case_pages(audits)
        context = {
            "audits": audits,
            "store": public_store_name(self.results.store),
            "version": _auditc_version(),
            "redact": self._redact,
            "sandbox": CASE_SANDBOX,
        }
        self._render(
            "index.html.j2",
            "index.html",
            systems=self._systems(),
            not_run=[(ref.name, ref.id) for ref in self.results.not_run],
            **context,
        )
        for audit in audits:
            self._render("audit.html.j2", audit.href, audit=audit, **context)
            for case in audit.cases:
                self._render("case.html.j2", case.href, audit=audit, case=case, **context)
        self._render("provenance.html.j2", PROVENANCE_PAGE, **self._provenance(), **context)
        (self.out / "style.css").write_bytes(
            resources.files(__package__).joinpath("static/style.css").read_bytes()
        )
        names = ["index.html", PROVENANCE_PAGE]
        names += [a.href for a in audits] + [c.href for a in audits for c in a.cases]
        return names + copied

    def _redact(self, text: str) -> str:
        """Text without the local absolute paths of the machine that built the site."""
        return redact_local_paths(text, self.results.store)

    def _render(self, template: str, target: str, **context: Any) -> None:
        html = self.env.get_template(template).render(page=target, **context)
        (self.out / target).write_text(html, encoding="utf-8")

    # ---------------------------------------------------------- audits

    def _audit(self, audit: Audit) -> AuditView:
        docs = _documentation(audit.cases[0].manifest)
        rows = [self._row(audit, name, audit.cases) for name in audit.score_names()]
        cases = [self._case(audit, case) for case in audit.cases]
        view = AuditView(
            audit.method,
            f"audit-{_slug(audit.method)}.html",
            docs.get("title"),
            docs.get("summary"),
            cases,
            rows,
        )
        view.charts = [self._score_chart(audit, row) for row in rows]
        view.breakdowns = self._breakdowns(audit)
        return view

    def _row(self, audit: Audit, name: str, cases: Sequence[SafetyCase]) -> ScoreRow:
        spec = audit.spec_of(name)
        scores = [case.score(name) for case in cases]
        ranks = _ranks(spec.valence, [s.value if s else None for s in scores])
        cells = [
            Cell(
                case.system_label,
                score.formatted() if score else "—",
                score.value if score else None,
                rank,
                score.gate() if score else None,
                f"{PROVENANCE_PAGE}#{_case_anchor(case)}",
                (score.text or f"{score.name} = {score.value!r}")
                if score
                else "not exported by this run",
                score.text if score else None,
                *_interval(score),
            )
            for case, score, rank in zip(cases, scores, ranks, strict=True)
        ]
        arrow, direction = VALENCE_TEXT[spec.valence]
        return ScoreRow(
            name,
            spec.title or name,
            spec.summary,
            spec.primary,
            arrow,
            direction,
            spec.unit,
            gate_text(spec),
            cells,
        )

    def _case(self, audit: Audit, case: SafetyCase) -> CaseView:
        page = self._case_page_path(case)
        docs = _documentation(case.manifest)
        datasets = [
            (m.name, m.id, path, digest)
            for m in case.lineage
            if m.kind == "Dataset"
            for path, digest in (sorted(m.input_files.items()) or [("—", "—")])
        ]
        return CaseView(
            case.method,
            case.id,
            case.system_label,
            case.systems,
            f"case-{_slug(case.method)}-{case.id}.html",
            page,
            f"{PROVENANCE_PAGE}#{_case_anchor(case)}",
            _time(case.manifest.finished_at),
            case.manifest.git_commit,
            case.manifest.auditc_version,
            [self._row(audit, name, [case]) for name in audit.score_names() if case.score(name)],
            docs.get("title"),
            docs.get("summary"),
            datasets,
            self._signers(case.path),
            case.path,
            case.run,
            case.run_path is None,
        )

    def _case_page_path(self, case: SafetyCase) -> str | None:
        stored = case_file(CASE_HTML_FILE)
        return f"cases/{case.id}/{CASE_HTML}" if stored in case.manifest.outputs else None

    def _copy_case_pages(self, audits: list[AuditView]) -> list[str]:
        written: list[str] = []
        for audit in audits:
            for case in audit.cases:
                if case.page is None:
                    continue
                html = self.results.store.read_bytes(case.source, case_file(CASE_HTML_FILE)).decode(
                    "utf-8", errors="replace"
                )
                target = self.out / case.page
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text(sanitize_case_html(html), encoding="utf-8")
                written.append(case.page)
        return written

    # ---------------------------------------------------------- charts

    def _chart_id(self) -> str:
        self.chart_seq += 1
        return f"chart{self.chart_seq}"

    def _score_chart(self, audit: Audit, row: ScoreRow) -> Chart:
        from markupsafe import Markup

        spec = audit.spec_of(row.name)
        bars = [
            _plots.Bar(c.system, c.value, c.text, c.rank) for c in row.cells if c.value is not None
        ]
        title = f"{row.title} {row.arrow}".strip()
        svg = _plots.score_chart(
            title,
            bars,
            limits=(spec.minimum, spec.maximum),
            gate=(spec.gate_min, spec.gate_max),
            chart_id=self._chart_id(),
        )
        sources = [
            (case.system_label, f"{PROVENANCE_PAGE}#{_case_anchor(case)}") for case in audit.cases
        ]
        caption = f"{row.title} per system ({row.direction})" + (
            f"; gate {row.gate}" if row.gate else ""
        )
        return Chart(title, Markup(svg), caption, sources)

    def _breakdowns(self, audit: Audit) -> list[BreakdownView]:
        tables: dict[str, list[tuple[SafetyCase, Manifest, GroupTable]]] = {}
        for case in audit.cases:
            seen: set[str] = set()
            for manifest in case.measurements:
                if manifest.name in seen:
                    continue
                seen.add(manifest.name)
                found = group_table(read_table(self.results.store, manifest))
                if found is not None:
                    tables.setdefault(manifest.name, []).append((case, manifest, found))
        return [self._breakdown(name, found) for name, found in sorted(tables.items())]

    def _breakdown(
        self, name: str, found: list[tuple[SafetyCase, Manifest, GroupTable]]
    ) -> BreakdownView:
        from markupsafe import Markup

        groups = _union(t.groups for _, _, t in found)
        columns = _union(t.columns for _, _, t in found)
        sources = [(c.system_label, f"{PROVENANCE_PAGE}#{_anchor(m)}") for c, m, _ in found]
        charts = []
        for column in columns:
            series = [
                _plots.GroupSeries(
                    case.system_label,
                    table.values.get(column, {}),
                    table.low.get(column),
                    table.high.get(column),
                )
                for case, _, table in found
            ]
            by = found[0][2].group_column
            title = f"{column} by {by}"
            svg = _plots.group_chart(f"{name}: {title}", groups, series, chart_id=self._chart_id())
            charts.append(Chart(title, Markup(svg), f"{name}: {title}", sources))
        header = [found[0][2].group_column] + [
            f"{col} · {c.system_label}" for col in columns for c, _, _ in found
        ]
        table = [
            [group]
            + [_number(t.values.get(col, {}).get(group)) for col in columns for _, _, t in found]
            for group in groups
        ]
        return BreakdownView(name, found[0][2].group_column, groups, columns, charts, table, header)

    # ------------------------------------------------------ index, provenance

    def _systems(self) -> list[dict[str, Any]]:
        rows: dict[str, dict[str, Any]] = {}
        for audit in self.results.audits:
            for case in audit.cases:
                for system in case.systems:
                    row = rows.setdefault(
                        system.service, {"system": system, "ids": set(), "audits": []}
                    )
                    row["ids"].add(system.service_id)
                    if audit.method not in [a for a, _ in row["audits"]]:
                        row["audits"].append((audit.method, f"audit-{_slug(audit.method)}.html"))
        return [rows[name] for name in sorted(rows)]

    def _provenance(self) -> dict[str, Any]:
        in_store = {NodeRef.of(m) for m in self.results.index.manifests}
        used_by: dict[NodeRef, list[str]] = {}
        for case in self.results.cases:
            for manifest in (case.manifest, *case.lineage):
                used_by.setdefault(NodeRef.of(manifest), []).append(
                    f"{case.method} · {case.system_label}"
                )
        current = [self._node(m, in_store, used_by) for m in self.results.current()]
        older = [self._node(m, in_store, used_by) for m in self.results.superseded]
        return {"current": current, "older": older}

    def _node(
        self, manifest: Manifest, in_store: set[NodeRef], used_by: dict[NodeRef, list[str]]
    ) -> NodeView:
        upstream = []
        for key, node_id in sorted(manifest.upstream.items()):
            kind, _, name = key.partition("/")
            ref = NodeRef(kind, name, node_id)
            upstream.append(
                (key, node_id, f"#{node_anchor(kind, name, node_id)}" if ref in in_store else None)
            )
        return NodeView(
            manifest,
            _anchor(manifest),
            manifest.output_kind,
            upstream,
            self._redact(json.dumps(manifest.spec, indent=2, sort_keys=True, default=str)),
            used_by.get(NodeRef.of(manifest), []),
            self._signers(node_path(manifest.kind, manifest.name, manifest.id)),
            self._earlier_runs(manifest),
        )

    def _earlier_runs(self, manifest: Manifest) -> list[Manifest]:
        path = node_path(manifest.kind, manifest.name, manifest.id)
        return [r.manifest for r in self.results.store.node_runs(path) if not r.current]

    def _signers(self, path: str) -> list[Attestation]:
        """Who signed the run at `path` (an earlier run's attestations moved with it)."""
        from .._attest import list_attestations

        return sorted(list_attestations(self.results.store, path), key=lambda a: a.file)


# ----------------------------------------------------------------- helpers


def _environment() -> Any:
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.PackageLoader(__package__, "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["short"] = lambda text, n=10: (text or "")[:n]
    return env


def public_store_name(store: Store) -> str:
    """How a published site names its store: a URI without its query, or a directory's name.

    A local store's absolute path says nothing to a reader elsewhere and tells them about
    the builder's machine, so only its last component is shown.
    """
    if not store.is_local:
        return store.uri.partition("?")[0]
    return Path(store.base).name or "store"


def redact_local_paths(text: str, store: Store) -> str:
    """`text` with the store's directory, the home directory and the temp directory shortened."""
    roots = [store.base] if store.is_local else []
    roots += [str(Path.home()), tempfile.gettempdir()]
    for root in sorted({r.rstrip("/") for r in roots if len(r) > 1}, key=len, reverse=True):
        label = f"<{public_store_name(store)}>" if root == store.base.rstrip("/") else "…"
        text = text.replace(root + "/", label + "/").replace(root, label)
    return text


def _documentation(manifest: Manifest) -> dict[str, Any]:
    found = manifest.spec.get("documentation")
    return found if isinstance(found, dict) else {}


def _interval(score: ScoreValue | None) -> tuple[str | None, str | None]:
    """The stored interval of a score as text, and a tooltip saying what it is."""
    if score is None or score.interval is None:
        return None, None
    found = score.interval
    text = f"[{score.formatted(found.low)}, {score.formatted(found.high)}]"
    return text, f"{found.confidence:.0%} confidence interval ({found.method})"


def _ranks(valence: str, values: list[float | None]) -> list[str | None]:
    """`best`/`worst` per value when the systems differ and the score has a better direction."""
    present = [v for v in values if v is not None and not math.isnan(v)]
    if valence == "neutral" or len(present) < 2 or min(present) == max(present):
        return [None] * len(values)
    best, worst = (
        (max(present), min(present)) if valence == "positive" else (min(present), max(present))
    )
    return ["best" if v == best else "worst" if v == worst else None for v in values]


_SCRIPT = re.compile(r"<script\b[^>]*>.*?</script\s*>", re.IGNORECASE | re.DOTALL)
_EXTERNAL_LINK = re.compile(
    r"<link\b[^>]*\bhref\s*=\s*[\"']?(?:[a-z][a-z0-9+.-]*:)?//[^>]*>", re.IGNORECASE
)
_HEAD = re.compile(r"<head\b[^>]*>", re.IGNORECASE)


def sanitize_case_html(html: str) -> str:
    """A rendered safety case that loads nothing from the network and runs no script.

    Older nbconvert pages load require.js and MathJax from a CDN and carry inline
    scripts; a report must open offline, leak nothing and run nothing (see `CASE_CSP`),
    so every `<script>` element and external stylesheet is removed and a
    Content-Security-Policy that forbids scripts and fetches is put first in `<head>`
    (it also refuses inline event handlers, which data can smuggle into markup).
    """
    html = _SCRIPT.sub("", html)
    html = _EXTERNAL_LINK.sub("", html)
    meta = f'<meta http-equiv="Content-Security-Policy" content="{CASE_CSP}">'
    match = _HEAD.search(html)
    if match is None:
        return f"<!DOCTYPE html><html><head>{meta}</head><body>{html}</body></html>"
    return html[: match.end()] + meta + html[match.end() :]


def _anchor(manifest: Manifest) -> str:
    return node_anchor(manifest.kind, manifest.name, manifest.id)


def _case_anchor(case: SafetyCase) -> str:
    return _anchor(case.manifest)


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9-]+", "-", name.lower()).strip("-") or "audit"


def _union(lists: Iterable[Sequence[str]]) -> list[str]:
    seen: list[str] = []
    for items in lists:
        seen.extend(item for item in items if item not in seen)
    return seen


def _number(value: float | None) -> str:
    return "—" if value is None else f"{value:.4g}"


def _time(moment: Any) -> str:
    return str(moment.isoformat(sep=" ", timespec="seconds"))


def _auditc_version() -> str:
    try:
        return version("auditc")
    except PackageNotFoundError:  # running from a source tree that is not installed
        return "unknown"
