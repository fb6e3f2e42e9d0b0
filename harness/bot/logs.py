"""The bot's logging: trading.log and stderr through one redacting filter, and owner-only files.

Every handler ``configure_logging`` installs carries ``REDACTOR``, which masks the registered API
key and secret and any request signature in every record, whichever library logged it.
"""

from __future__ import annotations

import logging
import os
import re
import sys
from pathlib import Path

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"


class RedactingFilter(logging.Filter):
    """Masks registered secrets (API key and secret) and request signatures in every record a
    handler writes, whichever library logged it (e.g. urllib3's DEBUG lines carry signed URLs)."""

    _SIGNATURE = re.compile(r"(signature[=\"':\s]+)[0-9a-fA-F]{16,}", re.IGNORECASE)

    def __init__(self) -> None:
        super().__init__()
        self.secrets: set[str] = set()

    def add(self, secret: str | None) -> None:
        if secret and len(secret) >= 6:
            self.secrets.add(secret)

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = self._SIGNATURE.sub(r"\1<redacted>", message)
        for secret in self.secrets:
            cleaned = cleaned.replace(secret, "<redacted>")
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


#: the filter on the bot's log handlers; the bot registers its keys with it
REDACTOR = RedactingFilter()


def write_private(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` created owner-only (0600), replacing what was there."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)


def configure_logging(log_dir: Path, level: str = "INFO") -> Path:
    """trading.log (owner-only) plus stderr, both through ``REDACTOR``; returns the log file's path."""
    log_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = log_dir / "trading.log"
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    os.close(fd)
    root = logging.getLogger()
    root.setLevel(level.upper())
    for handler in list(root.handlers):
        if getattr(handler, "_harness", False):
            root.removeHandler(handler)
    file_handler = logging.FileHandler(path, encoding="utf-8")
    stream_handler = logging.StreamHandler(sys.stderr)
    for handler in (file_handler, stream_handler):
        handler.setFormatter(logging.Formatter(LOG_FORMAT))
        handler.addFilter(REDACTOR)
        handler._harness = True  # type: ignore[attr-defined]
        root.addHandler(handler)
    return path


__all__ = ["LOG_FORMAT", "REDACTOR", "RedactingFilter", "configure_logging", "write_private"]
