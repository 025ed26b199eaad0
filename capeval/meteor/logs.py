"""The ``capeval.meteor`` logger. Its warnings (a JVM restarted, a smaller heap, fewer JVMs) reach stderr
in the documented ``capeval: warning: ...`` form (docs/cli.md) while the application has configured no
logging of its own; once it has, they go only to its handlers."""

from __future__ import annotations

import logging
import sys

log = logging.getLogger("capeval.meteor")


def _application_handles(logger: logging.Logger, ours: logging.Handler) -> bool:
    """Whether a handler other than ``ours`` would see the record (Python's last resort would not run)."""
    current: logging.Logger | None = logger
    while current is not None:
        if any(h is not ours for h in current.handlers):
            return True
        if not current.propagate:
            return False
        current = current.parent
    return False


class _CapevalStderr(logging.Handler):
    """Python's last-resort output (warnings and worse, to stderr), in capeval's one-line form."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)

    def emit(self, record: logging.LogRecord) -> None:
        if _application_handles(log, self):
            return
        try:
            text = " ".join(record.getMessage().split())
            sys.stderr.write(f"capeval: {record.levelname.lower()}: {text}\n")
        except Exception:  # pragma: no cover - as logging does: never raise from a log call
            self.handleError(record)


if not any(isinstance(h, _CapevalStderr) for h in log.handlers):  # once, even if reloaded
    log.addHandler(_CapevalStderr())
