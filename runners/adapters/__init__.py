"""Compile a service's request/response adapters into fast closures.

Example:
    >>> from schemas import TransformJSON
    >>> run = compile_pipeline([TransformJSON(kind="TransformJSON", template={"prompt": "$.text"})])
    >>> run({"text": "hi"})
    [{'prompt': 'hi'}]
"""

from ._compile import AdapterError, Pipeline, compile_path, compile_pipeline

__all__ = ["AdapterError", "Pipeline", "compile_path", "compile_pipeline"]
