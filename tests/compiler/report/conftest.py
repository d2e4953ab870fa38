"""Synthetic stores for the report, diff and check tests, and a headless browser.

`SyntheticStore` writes what the local backend writes — manifests with upstream maps,
Parquet parts, `scores.json`, `instances/<score>.parquet`, an nbconvert-rendered
`index.html` — through `schemas.Store`, with scores computed from the data it
generates, so the tests read a store the way `auditc report` reads a real one.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from report_browser import Browser
from report_store import SYSTEMS, SyntheticStore, _id

from schemas import ScoreValue


@pytest.fixture(scope="session")
def notebook_html() -> str:
    """A safety case page as nbconvert renders it (with its CDN scripts, which the site must drop)."""
    import nbformat
    from nbconvert import HTMLExporter

    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_markdown_cell(
            "# Safety case\nFalse positives by identity group, $p < 0.05$."
        ),
        nbformat.v4.new_code_cell(
            "table",
            outputs=[
                nbformat.v4.new_output(
                    "execute_result", {"text/plain": "group  fpr"}, execution_count=1
                )
            ],
        ),
    ]
    html, _ = HTMLExporter(exclude_input=True).from_notebook_node(nb)
    return str(html)


@pytest.fixture(scope="session")
def synthetic_store(tmp_path_factory: pytest.TempPathFactory, notebook_html: str) -> SyntheticStore:
    """Two audits over three systems, with a superseded run and a failed run.

    - `filter-safety-case` for filter-a, filter-b, filter-c (filter-a run twice; the
      first is superseded; filter-c also has a later failed run);
    - `latency-case` for filter-a and filter-b, scores without gates or instances.
    """
    synthetic = SyntheticStore(tmp_path_factory.mktemp("synthetic") / "store")
    data = synthetic.dataset()
    synthetic.audit(SYSTEMS[0], data, seed=3, html=notebook_html, threshold=0.4)  # superseded below
    for seed, system in enumerate(SYSTEMS, start=20):
        synthetic.audit(
            system,
            data,
            seed=seed,
            html=notebook_html.replace("Safety case", f"Safety case of {system.service}"),
        )
    synthetic.safety_case(
        "filter-safety-case",
        [],
        {"InferenceService/filter-c": _id("svc", "filter-c")},
        status="failed",
        threshold=0.9,
    )
    for system, p95 in ((SYSTEMS[0], 41.0), (SYSTEMS[1], 230.0)):
        evaluation = next(
            m
            for m in synthetic.store.manifests()
            if m.kind == "Evaluation" and f"InferenceService/{system.service}" in m.upstream
        )
        synthetic.safety_case(
            "latency-case",
            [
                ScoreValue(
                    name="p95_latency",
                    value=p95,
                    title="95th percentile latency",
                    valence="negative",
                    primary=True,
                    unit="ms",
                    format="{value:.0f}",
                )
            ],
            {
                "Evaluation/filter-on-phrases": evaluation.id,
                f"InferenceService/{system.service}": _id("svc", system.service),
            },
            html="<html><head><title>latency</title></head><body><h1>Latency</h1></body></html>",
        )
    return synthetic


@pytest.fixture(scope="session")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Browser]:
    """One headless Chromium for the session."""
    launched = Browser.launch(tmp_path_factory.mktemp("chromium-profile"))
    try:
        yield launched
    finally:
        launched.close()
