"""Keep the API key out of everything the evaluation client writes.

A server may echo the `Authorization` header into an error body, and from there into
`_error_`, a log line or the run's message. The client replaces the key in response
bodies as it reads them; this module covers the rest: messages and log records.
"""

from __future__ import annotations

import logging

__all__ = ["REDACTED", "SecretFilter", "redact"]

REDACTED = "[REDACTED]"
"""What the API key is replaced with."""


def redact(text: str, secret: str | None) -> str:
    """`text` with every occurrence of `secret` replaced (unchanged when there is none)."""
    if secret and secret in text:
        return text.replace(secret, REDACTED)
    return text


class SecretFilter(logging.Filter):
    """A handler filter that redacts `secret` from each record's message and traceback.

    Example:
        >>> handler.addFilter(SecretFilter(api_key))  # doctest: +SKIP
    """

    def __init__(self, secret: str) -> None:
        super().__init__()
        self.secret = secret

    def filter(self, record: logging.LogRecord) -> bool:
        """Rewrite the record when it holds the secret; never drops a record."""
        message = record.getMessage()
        if self.secret in message:
            record.msg, record.args = redact(message, self.secret), None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text, self.secret)
        return True
