"""The fingerprint of an external service: what identifies the system behind its URL.

Light on purpose (stdlib HTTP, no event loop): the evaluation client takes a fingerprint
before it sends rows, and `auditc plan`/`run` take one to compare with the stored run's.

Example:
    >>> take_fingerprint(service, "https://api.example.com", api_key)  # doctest: +SKIP
    'sha256:3f2a9c0d1e7b4a61'
"""

from ._take import (
    DEFAULT_FINGERPRINT_TIMEOUT_S,
    FingerprintError,
    fingerprint_spec,
    take_fingerprint,
)

__all__ = [
    "DEFAULT_FINGERPRINT_TIMEOUT_S",
    "FingerprintError",
    "fingerprint_spec",
    "take_fingerprint",
]
