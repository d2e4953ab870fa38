"""What runs inside a workflow: inference servers, the evaluation client, dataset
ingestion, the method runner, and the analysis helpers notebooks import.

Each subpackage has its own public API and a `python -m runners.<name> CONFIG.json`
entry point (what the local backend spawns and what a Kubernetes container runs).
`runners` imports `schemas` and never `compiler`.
"""
