"""The static site's files: layout, relative links, escaping, sanitised safety cases, the out dir."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
from report_store import SyntheticStore

from compiler.report import build_site, load_results, sanitize_case_html
from compiler.report._site import SITE_MARKER, _ranks, gate_text
from schemas import FileDigest, ScoreValue, StoreError, UsageError


class _Refs(HTMLParser):
    """Every href/src and id of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.refs: list[str] = []
        self.ids: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if name in ("href", "src") and value is not None:
                self.refs.append(value)
            if name == "id" and value is not None:
                self.ids.add(value)


def _parse(path: Path) -> _Refs:
    parser = _Refs()
    parser.feed(path.read_text(encoding="utf-8"))
    return parser


@pytest.fixture(scope="module")
def site(synthetic_store: SyntheticStore, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("site") / "site"
    build_site(load_results(synthetic_store.store), out)
    return out


def test_pages_of_every_audit_and_case(site: Path) -> None:
    pages = sorted(p.relative_to(site).as_posix() for p in site.rglob("*.html"))

    assert "index.html" in pages and "provenance.html" in pages
    assert "audit-filter-safety-case.html" in pages and "audit-latency-case.html" in pages
    assert sum(p.startswith("case-filter-safety-case-") for p in pages) == 3
    assert sum(p.startswith("case-latency-case-") for p in pages) == 2
    assert sum(p.startswith("cases/") for p in pages) == 5
    assert (site / "style.css").is_file() and (site / SITE_MARKER).is_file()


def test_every_link_is_relative_and_resolves(site: Path) -> None:
    for page in site.rglob("*.html"):
        parsed = _parse(page)
        for ref in parsed.refs:
            assert not re.match(r"^[a-z][a-z0-9+.-]*:|^//|^/", ref), f"{page.name}: {ref}"
            target, _, fragment = ref.partition("#")
            resolved = (page.parent / target).resolve() if target else page
            assert resolved.is_file(), f"{page.name}: {ref} does not exist"
            if fragment and resolved.suffix == ".html":
                assert fragment in _parse(resolved).ids, f"{page.name}: {ref} has no target"


def test_every_value_links_to_its_run_on_the_provenance_page(site: Path) -> None:
    html = (site / "audit-filter-safety-case.html").read_text()
    provenance = _parse(site / "provenance.html").ids

    anchors = re.findall(r'href="provenance\.html#([^"]+)"', html)

    assert len(anchors) >= 3 * 3
    assert set(anchors) <= provenance
    # The provenance page holds the current runs and the older and failed ones.
    text = (site / "provenance.html").read_text()
    assert text.count('class="node"') == len(
        provenance & {a for a in provenance if a.startswith("node-")}
    )
    assert "the notebook raised ValueError" in text
    assert "3f2a9c0b1d2e3f4a5b6c7d8e9f00112233445566" in text
    assert "0123456789abcdef0123456789abcdef01234567" in text


def test_copied_safety_cases_load_nothing_from_the_network(site: Path) -> None:
    pages = list((site / "cases").rglob("index.html"))

    assert pages
    for page in pages:
        html = page.read_text()
        # nbconvert's require.js and MathJax tags are gone; what inline code could
        # still fetch (mermaid, loaded only for diagrams) the policy forbids.
        assert not re.search(r"<(script|link)\b[^>]*(src|href)=[\"']?(https?:)?//", html)
        assert 'http-equiv="Content-Security-Policy"' in html
        assert "default-src 'none'" in html


def test_sanitize_removes_every_script_and_external_stylesheets() -> None:
    html = (
        '<html><head><script src="https://cdn.example/x.js"> </script>'
        "<link rel='stylesheet' href='//cdn.example/y.css'><script>var local = 1;</script>"
        '<script src="local.js"></script></head><body>ok</body></html>'
    )

    clean = sanitize_case_html(html)

    assert "cdn.example" not in clean and "<script" not in clean
    assert "var local = 1;" not in clean and 'src="local.js"' not in clean
    assert clean.index("Content-Security-Policy") < clean.index("ok</body>")
    assert "script-src" not in clean and "default-src 'none'" in clean
    assert "Content-Security-Policy" in sanitize_case_html("<p>a fragment</p>")


def test_score_text_is_escaped(tmp_path: Path) -> None:
    synthetic = SyntheticStore(tmp_path / "store")
    synthetic.safety_case(
        "sc",
        [
            ScoreValue(
                name="s",
                value=1.0,
                primary=True,
                title="<b>bold</b>",
                text="<script>alert(1)</script>",
            )
        ],
        {},
    )
    out = tmp_path / "site"

    build_site(load_results(synthetic.store), out)

    for page in out.glob("*.html"):
        html = page.read_text()
        assert "<script>alert(1)</script>" not in html and "<b>bold</b>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in next(out.glob("case-*.html")).read_text()


def test_an_empty_store_builds_a_site_that_says_so(tmp_path: Path) -> None:
    site = build_site(load_results(SyntheticStore(tmp_path / "store").store), tmp_path / "site")

    assert site.cases == 0
    assert "no complete safety cases" in site.index.read_text()


def test_a_foreign_non_empty_directory_is_refused(tmp_path: Path) -> None:
    out = tmp_path / "mine"
    out.mkdir()
    (out / "thesis.tex").write_text("precious")
    results = load_results(SyntheticStore(tmp_path / "store").store)

    with pytest.raises(UsageError, match="is not empty and was not written by `auditc report`"):
        build_site(results, out)
    assert (out / "thesis.tex").read_text() == "precious"
    with pytest.raises(UsageError, match="is a file"):
        build_site(results, out / "thesis.tex")


def test_a_rebuild_replaces_the_old_site(tmp_path: Path, synthetic_store: SyntheticStore) -> None:
    out = tmp_path / "site"
    build_site(load_results(SyntheticStore(tmp_path / "empty").store), out)
    (out / "stale.html").write_text("old")

    site = build_site(load_results(synthetic_store.store), out)

    assert not (out / "stale.html").exists()
    assert site.audits == 2 and site.systems == 3 and site.cases == 5
    assert site.gates_failed == 2


def test_better_is_green_whichever_direction_is_better() -> None:
    assert _ranks("negative", [0.3, 0.1, 0.2]) == ["worst", "best", None]
    assert _ranks("positive", [0.3, 0.1, 0.2]) == ["best", "worst", None]
    assert _ranks("neutral", [0.3, 0.1]) == [None, None]
    assert _ranks("positive", [0.5, 0.5]) == [None, None]
    assert _ranks("positive", [0.5, None]) == [None, None]


def test_gate_text_uses_the_score_format() -> None:
    score = ScoreValue(name="gap", value=0.2, format="{value:.1%}")

    assert gate_text(score.model_copy(update={"gate_max": 0.1})) == "≤ 10.0%"
    assert gate_text(score.model_copy(update={"gate_min": 0.05})) == "≥ 5.0%"
    both = score.model_copy(
        update={"gate_min": 1, "gate_max": 2, "unit": "ms", "format": "{value:.0f}"}
    )
    assert gate_text(both) == "between 1 ms and 2 ms"
    assert gate_text(score) is None


def test_a_scores_file_with_a_format_that_cannot_render_numbers_is_refused(tmp_path: Path) -> None:
    synthetic = SyntheticStore(tmp_path / "store")
    synthetic.safety_case("sc", [ScoreValue(name="n", value=2.5, primary=True)], {})
    [case] = [m for m in synthetic.store.manifests() if m.name == "sc"]
    path = f"method/sc/{case.id}"
    raw = json.loads(synthetic.store.read_bytes(path, "_case/scores.json"))
    raw["scores"][0]["format"] = "{value:d}"  # integers only: a float score cannot use it
    data = json.dumps(raw).encode()
    synthetic.store.write_bytes(data, path, "_case/scores.json")
    # As its writer made it: listed in the manifest with its digest.
    outputs = {**case.outputs, "_case/scores.json": FileDigest.of(data)}
    synthetic.store.write_manifest(path, case.model_copy(update={"outputs": outputs}))

    with pytest.raises(StoreError, match="scores.json: not a valid ScoresFile"):
        load_results(synthetic.store)


def test_the_same_store_builds_the_same_bytes(
    tmp_path: Path, synthetic_store: SyntheticStore
) -> None:
    results = load_results(synthetic_store.store)
    first = build_site(results, tmp_path / "one")
    second = build_site(results, tmp_path / "two")

    assert first.pages == second.pages
    for page in first.pages:
        assert (first.out_dir / page).read_bytes() == (second.out_dir / page).read_bytes(), page


def test_nan_values_are_neither_best_nor_worst() -> None:
    assert _ranks("positive", [float("nan"), 0.2, 0.1]) == [None, "best", "worst"]


def test_public_api() -> None:
    import compiler.report

    assert compiler.report.__all__ == sorted(
        compiler.report.__all__, key=lambda n: (not n.isupper(), n)
    )
    assert {
        "build_site",
        "load_results",
        "diff_results",
        "render_diff",
        "check_gates",
        "render_check",
    } <= set(compiler.report.__all__)
    for name in compiler.report.__all__:
        assert hasattr(compiler.report, name), name


def test_errors_and_the_footer_show_no_local_path(tmp_path: Path) -> None:
    synthetic = SyntheticStore(tmp_path / "store")
    synthetic.safety_case(
        "sc", [ScoreValue(name="s", value=1.0, primary=True)], {"InferenceService/svc": "s" * 20}
    )
    failed = synthetic.safety_case("sc", [], {}, status="failed", threshold=2)
    message = f"cannot read {tmp_path / 'store'}/method/sc/{failed.id}/x.parquet"
    synthetic.store.write_manifest(
        f"method/sc/{failed.id}", failed.model_copy(update={"error": message})
    )
    out = tmp_path / "site"

    build_site(load_results(synthetic.store), out)

    provenance = (out / "provenance.html").read_text()
    assert f"cannot read &lt;store&gt;/method/sc/{failed.id}/x.parquet" in provenance
    for page in out.rglob("*.html"):
        assert str(tmp_path) not in page.read_text(), page.name


def test_a_case_page_leads_with_its_verdict_and_frames_no_script(site: Path) -> None:
    page = next(site.glob("case-filter-safety-case-*.html")).read_text()

    verdict = page[page.index('id="verdict"') : page.index('class="provenance-block"')]
    assert 'data-score="max_fpr_gap"' in verdict and "gate ≤ 10.0%" in verdict
    assert "Git commit</dt><dd><code>3f2a9c0b1d2e" in page
    assert "Dataset/phrases" in page and "audits/data/phrases.jsonl" in page
    assert 'sandbox="allow-popups allow-popups-to-escape-sandbox"' in page
    assert "allow-scripts" not in page
    copied = next(site.glob("cases/*/index.html")).read_text()
    assert "script-src" not in copied and "default-src 'none'" in copied
