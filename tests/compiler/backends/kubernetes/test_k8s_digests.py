"""Images by digest: a tag is a warning (an error with --require-digests / requireDigests),
and the digest of every image a node's pods run is recorded in its manifest."""

from __future__ import annotations

from pathlib import Path

import pytest
from k8s_helpers import FIXTURE, STACK, load_graph

from compiler.backends.kubernetes import KubernetesConfig, render_manifests
from compiler.cli.main import main
from runners.fetch import CommitConfig


def test_images_by_tag_are_warnings_and_with_require_digests_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Every image a pod runs is named by digest, or compile says which is not."""
    out = tmp_path / "out"
    store = STACK["store"]["uri"]
    args = ["-C", str(FIXTURE), "compile", "--store", store, "--out", str(out), "--no-validate"]
    main(args)
    warned = [line for line in capsys.readouterr().err.splitlines() if "named by tag" in line]
    assert sorted(line.split(": image ")[0] for line in warned) == [
        "warning: InferenceService/echo-container runner.image",
        "warning: InferenceService/llm-vllm runner.image",
        "warning: auditc:images.runner",
    ]
    with pytest.raises(SystemExit) as info:
        main([*args, "--require-digests"])
    assert info.value.code == 1
    error = capsys.readouterr().err
    assert "auditc:images.requireDigests is set, but images are named by tag" in error
    assert "ghcr.io/acme/echo:1.2.3 is named by tag" in error

    pinned = {
        "store": {"uri": store},
        "images": {
            "runner": "ghcr.io/acme/auditc-runner@sha256:" + "1" * 64,
            "vllm": "vllm/vllm-openai@sha256:" + "2" * 64,
        },
    }
    graph = load_graph(FIXTURE)
    config = KubernetesConfig.model_validate(pinned)
    rendering = render_manifests(graph, config)
    commit = CommitConfig.model_validate_json(
        next(
            r.manifest["data"]["commit.json"]
            for r in rendering.resources
            if r.kind == "ConfigMap" and r.name.startswith("phrases-llm-")
        )
    )
    assert commit.manifest["image_digests"] == {
        "ghcr.io/acme/auditc-runner@sha256:" + "1" * 64: "sha256:" + "1" * 64,
        "vllm/vllm-openai@sha256:" + "2" * 64: "sha256:" + "2" * 64,
    }, "every image of the evaluation's pods, with its digest, goes into its manifest"
