"""One JSON object per log line, so lifecycle events can be queried as data."""

from __future__ import annotations

import logging
import sys

from pythonjsonlogger.json import JsonFormatter

# What uvicorn logs as an error with a traceback although a client caused it: a
# text frame that is not UTF-8 (it closes the socket with 1007, as it should).
_CLIENT_FAULTS = {("uvicorn.error", "Invalid UTF-8 sequence received from client.")}
# What LOG_LEVEL may be: the names logging accepts (upper case only).
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


def _client_fault_as_info(record: logging.LogRecord) -> bool:
    """Anything a visitor can send is not the server's error: log it as INFO, no traceback."""
    if (record.name, record.msg) not in _CLIENT_FAULTS:
        return True
    record.levelno, record.levelname = logging.INFO, "INFO"
    record.exc_info, record.exc_text = None, None
    return logging.getLogger().isEnabledFor(logging.INFO)


def configure(level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(_client_fault_as_info)
    handler.setFormatter(
        JsonFormatter(
            "%(asctime)s %(levelname)s %(name)s %(message)s",
            rename_fields={"asctime": "ts", "levelname": "level", "name": "logger"},
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # Access logs would carry session ids (capabilities) in their paths.
    logging.getLogger("uvicorn.access").disabled = True
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
