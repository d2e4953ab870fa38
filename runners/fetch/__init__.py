"""The steps around a workflow in a Kubernetes pod: fetch verified inputs, commit the manifest.

- `python -m runners.fetch inputs CONFIG.json` downloads every input a pod reads from
  `<store>/inputs/` (uploaded by `auditc push`) and checks its sha256; exit 2 when an
  input is missing or does not match, so the Job fails at once.
- `python -m runners.fetch commit CONFIG.json` writes the node's `_manifest.json` after
  its step succeeded (runners never write manifests; the backend does, last).

Example:
    >>> from runners.fetch import FetchConfig, fetch_inputs   # doctest: +SKIP
    >>> fetch_inputs(FetchConfig(store="s3://bucket/audits", items=[...]))
"""

from ._commit import CommitConfig, ExpectedRows, commit_node
from ._fetch import FetchConfig, FetchItem, FetchResult, InputError, fetch_inputs
from ._layout import (
    INPUTS_PREFIX,
    TREES_PREFIX,
    TreeListing,
    blob_key,
    tree_digest,
    tree_key,
)

__all__ = [
    "INPUTS_PREFIX",
    "TREES_PREFIX",
    "CommitConfig",
    "ExpectedRows",
    "FetchConfig",
    "FetchItem",
    "FetchResult",
    "InputError",
    "TreeListing",
    "blob_key",
    "commit_node",
    "fetch_inputs",
    "tree_digest",
    "tree_key",
]
