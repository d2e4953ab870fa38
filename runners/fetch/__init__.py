"""The steps around a workflow in a Kubernetes pod: fetch verified inputs, commit the manifest.

- `python -m runners.fetch inputs CONFIG.json` downloads every input a pod reads from
  `<store>/inputs/` (uploaded by `auditc push`) and checks its sha256; exit 2 when an
  input is missing or does not match, so the Job fails at once.
- `python -m runners.fetch commit CONFIG.json` writes the node's `_manifest.json` after
  its step succeeded (runners never write manifests; the backend does, last).
- `python -m runners.fetch wait CONFIG.json` (asynchronous runs) waits until the nodes a
  pod reads are committed to the store, and a prefetched model is in the shared cache.
- `python -m runners.fetch model CONFIG.json` downloads a model's weights once into the
  shared model cache (the prefetch Job).

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
from ._model import ModelFetchConfig, prefetch_model
from ._wait import WaitConfig, WaitNode, wait_for_inputs

__all__ = [
    "INPUTS_PREFIX",
    "TREES_PREFIX",
    "CommitConfig",
    "ExpectedRows",
    "FetchConfig",
    "FetchItem",
    "FetchResult",
    "InputError",
    "ModelFetchConfig",
    "TreeListing",
    "WaitConfig",
    "WaitNode",
    "blob_key",
    "commit_node",
    "fetch_inputs",
    "prefetch_model",
    "tree_digest",
    "tree_key",
    "wait_for_inputs",
]
