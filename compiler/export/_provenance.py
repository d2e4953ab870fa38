"""Provenance of exported results: node ids, content hashes, model revision, git commit.

Every export format carries the same facts in its own metadata fields, taken from the
manifests of the nodes it covers.
"""

from __future__ import annotations

from typing import Any

from schemas import Manifest, Store, node_path

__all__ = ["node_provenance", "flat_provenance"]


def node_provenance(store: Store, manifest: Manifest) -> dict[str, Any]:
    """What the manifest records about where a node's outputs come from."""
    return {
        "kind": manifest.kind,
        "name": manifest.name,
        "id": manifest.id,
        "status": manifest.status,
        "uri": store.uri_of(node_path(manifest.kind, manifest.name, manifest.id)),
        "upstream": dict(manifest.upstream),
        "input_files": dict(manifest.input_files),
        "model_revision": manifest.model_revision,
        "image": manifest.image,
        "git_commit": manifest.git_commit,
        "auditc_version": manifest.auditc_version,
        "started_at": manifest.started_at.isoformat(),
        "finished_at": manifest.finished_at.isoformat(),
    }


def flat_provenance(store: Store, manifest: Manifest, prefix: str = "auditc") -> dict[str, str]:
    """The provenance as `prefix.key` → string pairs, for formats whose metadata is flat text.

    Upstream ids become `prefix.upstream.Kind/name`, file hashes `prefix.input_file.<path>`;
    absent values are left out.
    """
    flat: dict[str, str] = {}
    for key, value in node_provenance(store, manifest).items():
        if isinstance(value, dict):
            singular = "input_file" if key == "input_files" else key
            flat.update({f"{prefix}.{singular}.{k}": str(v) for k, v in sorted(value.items())})
        elif value is not None:
            flat[f"{prefix}.{key}"] = str(value)
    return flat
