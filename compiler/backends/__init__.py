"""Stage 5, backends: execute a resolved `Graph`.

- `compiler.backends.local` runs the graph on this machine: runner subprocesses,
  inference servers on 127.0.0.1, outputs and manifests in a store.
- `compiler.backends.kubernetes` renders the same graph as a Pulumi program.

Backends are the only part of `compiler` that calls into `runners`, and only
through the runners' public names. Import a backend by its own package: this
package imports neither, so loading one never pays for the other.
"""
