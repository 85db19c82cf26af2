"""How ``referral-net serve`` formats its logs: one JSON object per line, or plain text.

:func:`logging_config` returns a :func:`logging.config.dictConfig` dictionary. ``serve`` hands it
to uvicorn as ``log_config``, so that uvicorn applies it in every worker process (a worker is a
fresh process: a configuration made in the parent would not reach it), and it covers all three
sources of lines alike: the app's loggers (``referral_net``, ``referral_net.requests``, the access
log), uvicorn's own (``uvicorn.error``) and anything else that logs through the root logger.

Every line names its request: :class:`RequestIdFilter` copies the id of the request being served
(:mod:`referral_net.request_context`) onto each record, ``None`` outside a request.

What the lines hold is decided where they are written, not here: the access log writes the route
template, never the path or the query string (``api/request_middleware.py``); unexpected errors
write their class, never their message (``api/problems.py``). JSON adds one guarantee of its own:
a message cannot forge a second record, because a newline in it is escaped.
"""

from __future__ import annotations

import logging
from typing import Any, Literal

from pythonjsonlogger.core import RESERVED_ATTRS
from pythonjsonlogger.orjson import OrjsonFormatter

from referral_net.request_context import current_request_id

LogFormat = Literal["json", "text"]
LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR"]

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"
# uvicorn passes a coloured copy of some messages as ``extra={"color_message": ...}``: the same
# text with terminal escapes, which would otherwise become a field of every such JSON line.
_DROPPED_EXTRAS = ("color_message",)


class RequestIdFilter(logging.Filter):
    """Put the current request's id on every record as ``request_id`` (``None`` outside one)."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Annotate ``record``; never drops it."""
        if not hasattr(record, "request_id"):
            record.request_id = current_request_id()
        return True


class JsonFormatter(OrjsonFormatter):
    """python-json-logger's orjson formatter with our field names.

    orjson rather than the library's default (the standard library's encoder): every request
    writes one line (the access log), and encoding it was about a quarter of that line's cost
    in a served worker (py-spy, docs/performance.md). Non-ASCII text is written as UTF-8, not
    as ``\\u`` escapes; either way one line is one JSON object.

    Each line: ``timestamp`` (ISO 8601, UTC), ``level``, ``logger``, ``message``, ``process``
    (the worker's pid), ``request_id``, then whatever the call passed as ``extra`` (the access
    log: ``method``, ``route``, ``status``, ``duration_ms``).
    """

    def __init__(self, **kwargs: Any) -> None:
        """Configure the library formatter; ``kwargs`` are passed on (dictConfig may add some)."""
        kwargs.setdefault("fmt", "{levelname}{name}{message}{process}{request_id}")
        kwargs.setdefault("style", "{")
        kwargs.setdefault("rename_fields", {"levelname": "level", "name": "logger"})
        kwargs.setdefault("timestamp", True)
        kwargs.setdefault("reserved_attrs", [*RESERVED_ATTRS, "taskName", *_DROPPED_EXTRAS])
        super().__init__(**kwargs)


def logging_config(*, log_format: LogFormat, level: LogLevel = "INFO") -> dict[str, Any]:
    """The ``dictConfig`` for ``serve``: every logger to stderr, as JSON or as plain text.

    uvicorn's own loggers are reset to propagate to the root logger, so that their lines take
    the same format; uvicorn's access logger stays unused (``serve`` turns it off: its lines
    carry the raw query string).
    """
    formatter: dict[str, Any] = (
        {"()": f"{__name__}.JsonFormatter"} if log_format == "json" else {"format": TEXT_FORMAT}
    )
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"request_id": {"()": f"{__name__}.RequestIdFilter"}},
        "formatters": {"default": formatter},
        "handlers": {
            "default": {
                "class": "logging.StreamHandler",
                "stream": "ext://sys.stderr",
                "formatter": "default",
                "filters": ["request_id"],
            }
        },
        "root": {"handlers": ["default"], "level": level},
        "loggers": {
            name: {"handlers": [], "propagate": True, "level": level}
            for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "uvicorn.asgi")
        },
    }
