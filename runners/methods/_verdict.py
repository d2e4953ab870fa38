"""What a rendered safety case shows before the notebook: its verdict and provenance.

`verdict_header` is HTML put at the top of `index.html`: the audit's question (the
Method's documentation title), the primary score with its interval and gate outcome,
and where it came from — the node id, the inputs' node ids, the datasets' file hashes
and the model revisions (or external service fingerprints) found upstream in the store.
Everything in it is escaped: names and texts come from specs and data.

`contain` makes the page inert: a Content-Security-Policy that allows no script and
no network fetch, so HTML that data smuggled into a Markdown cell or an output cannot
run in a reader's browser.
"""

from __future__ import annotations

import html
import posixpath
import re
from collections import deque

from schemas import Manifest, ScoreValue, Store, StoreError, node_path

from ._config import MethodConfig, node_id_of

__all__ = ["SAFETY_CASE_CSP", "contain", "verdict_header"]

SAFETY_CASE_CSP = (
    "default-src 'none'; img-src data: blob:; style-src 'unsafe-inline' data:; font-src data:"
)
"""No script runs and nothing is fetched: a safety case is static HTML with inline images."""

_HEAD = re.compile(r"<head\b[^>]*>", re.IGNORECASE)
_BODY = re.compile(r"<body\b[^>]*>", re.IGNORECASE)
_COLOURS = {"pass": "#1a7f37", "fail": "#cf222e", "inconclusive": "#9a6700", None: "#59636e"}
_MAX_UPSTREAM = 200
"""Manifests read while looking for datasets and systems upstream."""


def contain(page: str, header: str = "") -> str:
    """The page with a no-script CSP first in `<head>` and `header` first in `<body>`."""
    meta = f'<meta http-equiv="Content-Security-Policy" content="{SAFETY_CASE_CSP}">'
    head = _HEAD.search(page)
    page = page[: head.end()] + meta + page[head.end() :] if head else meta + page
    body = _BODY.search(page)
    return page[: body.end()] + header + page[body.end() :] if body else header + page


def verdict_header(config: MethodConfig, scores: list[ScoreValue]) -> str:
    """The verdict and provenance block of a safety case, as escaped HTML."""
    method = config.method
    docs = method.documentation
    question = (docs.title if docs else None) or method.name
    primary = next((s for s in scores if s.primary), scores[0] if scores else None)
    outcome = primary.gate() if primary else None
    parts = [
        f'<section id="auditc-verdict" style="font-family:system-ui,sans-serif;'
        f"border:1px solid #d0d7de;border-left:6px solid {_COLOURS[outcome]};border-radius:8px;"
        f'padding:12px 18px;margin:12px 24px">',
        f"<div style='font-size:1.5em;font-weight:600'>{_e(question)}</div>",
    ]
    if docs and docs.summary:
        parts.append(f"<p style='color:#59636e'>{_e(docs.summary)}</p>")
    if primary is not None:
        parts.append(_score_line(primary, outcome))
    parts.append(_provenance(config))
    parts.append("</section>")
    return "".join(parts)


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _score_line(score: ScoreValue, outcome: str | None) -> str:
    shown = score.formatted()
    interval = ""
    if score.interval is not None:
        low = score.format.format(value=score.interval.low)
        high = score.format.format(value=score.interval.high)
        interval = f" <span style='color:#59636e'>[{_e(low)}, {_e(high)}] at {score.interval.confidence:.0%}</span>"
    verdict = ""
    if outcome is not None:
        verdict = (
            f" <strong style='color:{_COLOURS[outcome]}'>{outcome.upper()}</strong>"
            f" <span style='color:#59636e'>(gate {_e(_gate(score))})</span>"
        )
    text = f"<div>{_e(score.text)}</div>" if score.text else ""
    return (
        f"<div style='font-size:1.15em;margin:6px 0'>{_e(score.title or score.name)}: "
        f"<strong style='font-size:1.4em'>{_e(shown)}</strong>{interval}{verdict}</div>{text}"
    )


def _gate(score: ScoreValue) -> str:
    bounds = []
    if score.gate_min is not None:
        bounds.append(f"≥ {score.format.format(value=score.gate_min)}")
    if score.gate_max is not None:
        bounds.append(f"≤ {score.format.format(value=score.gate_max)}")
    text = " and ".join(bounds)
    if score.gate_confidence is not None:
        text += f" at {score.gate_confidence:.0%} confidence"
    return text


def _provenance(config: MethodConfig) -> str:
    rows = [("Safety case", f"Method/{config.method.name} {node_id_of(config.output_uri)}")]
    rows += [
        (f"Input {name}", f"{ref.kind} {node_id_of(ref.uri)}")
        for name, ref in sorted(config.inputs.items())
    ]
    for manifest in _upstream(config):
        if manifest.kind == "Dataset":
            files = ", ".join(
                f"{p} sha256 {d[:16]}" for p, d in sorted(manifest.input_files.items())
            )
            rows.append((f"Dataset {manifest.name}", f"{manifest.id} {files}".strip()))
        elif manifest.kind == "Evaluation":
            found = [
                f"model revision {manifest.model_revision}" if manifest.model_revision else "",
                _optional(manifest, "service_version", "version"),
                _optional(manifest, "service_fingerprint", "fingerprint"),
            ]
            shown = ", ".join(x for x in found if x) or "no model revision recorded"
            rows.append((f"Evaluation {manifest.name}", shown))
    cells = "".join(
        f"<tr><th style='text-align:left;padding-right:12px;color:#59636e;font-weight:600'>"
        f"{_e(label)}</th><td><code>{_e(value)}</code></td></tr>"
        for label, value in rows
    )
    return (
        "<details style='margin-top:8px'><summary>Provenance</summary>"
        f"<table style='font-size:.9em'>{cells}</table></details>"
    )


def _optional(manifest: Manifest, field: str, label: str) -> str:
    value = getattr(manifest, field, None)
    return f"{label} {value}" if value else ""


def _upstream(config: MethodConfig) -> list[Manifest]:
    """The upstream manifests of the inputs, breadth-first, as far as the store has them."""
    found: list[Manifest] = []
    try:
        root = _store_root(config.output_uri)
        store = Store.open(root, create=False)
        queue = deque(_ref_of(ref.uri) for ref in config.inputs.values())
        seen: set[tuple[str, str, str]] = set()
        while queue and len(seen) < _MAX_UPSTREAM:
            key = queue.popleft()
            if key is None or key in seen:
                continue
            seen.add(key)
            manifest = store.read_manifest(key[0] + "/" + key[1] + "/" + key[2])
            if manifest is None:
                continue
            found.append(manifest)
            for upstream, node_id in manifest.upstream.items():
                kind, _, name = upstream.partition("/")
                queue.append((node_path(kind, name, node_id).split("/")[0], name, node_id))
    except (StoreError, OSError, ValueError):
        pass  # provenance is shown as far as it can be read; the run does not depend on it
    return found


def _store_root(uri: str) -> str:
    path, _, query = uri.partition("?")
    root = posixpath.dirname(posixpath.dirname(posixpath.dirname(path.rstrip("/"))))
    return root + (f"?{query}" if query else "")


def _ref_of(uri: str) -> tuple[str, str, str] | None:
    parts = uri.partition("?")[0].rstrip("/").split("/")
    return (parts[-3], parts[-2], parts[-1]) if len(parts) >= 3 else None
