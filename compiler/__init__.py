"""The audit compiler: load → validate → resolve → plan, and the backends that run a graph.

Example:
    >>> from compiler import load_project, resolve_graph      # doctest: +SKIP
    >>> graph = resolve_graph(load_project(Path("."), [Path("audits/tutorial")]))
"""

from ._attest import Attestation, PublicKey, SigningKey, attest_node, list_attestations
from ._extras import graph_extras, require_graph_extras
from ._git import GitError, GitState, git_state, load_baseline, load_project_at
from ._graph_render import GRAPH_SCHEMA_VERSION, render_graph
from ._plan import PLAN_SCHEMA_VERSION, Baseline, BaselineNode, Plan, PlanEntry, plan, render_plan
from ._project import (
    LoadedResource,
    PathRef,
    Project,
    Reference,
    SourceLocation,
    path_refs,
    references,
)
from ._rerun import RerunResult, rerun_node
from ._resolve import ID_LENGTH, Graph, Node, NodeId, resolve_graph
from ._schema_docs import (
    embed_reference,
    render_schema,
    spec_json_schema,
    spec_reference_markdown,
)
from ._scope import (
    DEFAULT_SPEC_DIR,
    ScopedGraph,
    load_scoped_graph,
    load_scoped_graph_at,
    project_paths,
    scope_project,
)
from ._sigstore import SigstoreIdentity, SigstoreSigner, sigstore_attest_node
from ._validate import hash_path, load_project, tree_hashes
from ._verify import VerifyResult, verify_audit
from ._written import MARKER_FILE, write_generated_files

__all__ = [
    "embed_reference",
    "DEFAULT_SPEC_DIR",
    "ScopedGraph",
    "load_scoped_graph",
    "load_scoped_graph_at",
    "project_paths",
    "scope_project",
    "GRAPH_SCHEMA_VERSION",
    "ID_LENGTH",
    "PLAN_SCHEMA_VERSION",
    "Attestation",
    "MARKER_FILE",
    "Baseline",
    "BaselineNode",
    "GitError",
    "GitState",
    "Graph",
    "LoadedResource",
    "Node",
    "NodeId",
    "PathRef",
    "Plan",
    "PlanEntry",
    "Project",
    "PublicKey",
    "Reference",
    "RerunResult",
    "SigningKey",
    "SigstoreIdentity",
    "SigstoreSigner",
    "sigstore_attest_node",
    "SourceLocation",
    "graph_extras",
    "VerifyResult",
    "attest_node",
    "git_state",
    "hash_path",
    "tree_hashes",
    "list_attestations",
    "write_generated_files",
    "load_baseline",
    "load_project",
    "load_project_at",
    "path_refs",
    "plan",
    "references",
    "render_graph",
    "render_plan",
    "render_schema",
    "require_graph_extras",
    "rerun_node",
    "resolve_graph",
    "spec_json_schema",
    "spec_reference_markdown",
    "verify_audit",
]
