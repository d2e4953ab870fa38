"""The `auditc` command line: one module per command, one error boundary (`_common.run_cli`)."""
