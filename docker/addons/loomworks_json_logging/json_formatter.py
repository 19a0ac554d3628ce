"""JSON lines for Odoo's logs: one JSON object per record, for log collectors reading stdout.

Plain Python (no odoo import), so it is testable on its own. Odoo's own formatter sets
``record.dbname`` and ``record.pid`` while formatting; this one reads the database name the same
way Odoo does (the thread's ``dbname`` attribute) when the record does not carry it already.
"""

import datetime
import json
import logging
import os
import threading

ENV_VAR = "LOOMWORKS_LOG_FORMAT"


def _database(record):
    name = getattr(record, "dbname", None) or getattr(threading.current_thread(), "dbname", None)
    # Odoo uses "?" for "no database" (requests without one, the server's own threads).
    return None if name in (None, "", "?") else str(name)


class JsonFormatter(logging.Formatter):
    """Formats a record as a single-line JSON object (newlines inside values are escaped)."""

    def format(self, record):
        entry = {
            "time": datetime.datetime.fromtimestamp(record.created, tz=datetime.timezone.utc).isoformat(
                timespec="milliseconds"
            ).replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "dbname": _database(record),
            "pid": record.process if record.process is not None else os.getpid(),
        }
        perf = getattr(record, "perf_info", None)
        if perf:
            entry["perf"] = str(perf).strip()
        if record.exc_info:
            if not record.exc_text:
                record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            entry["exception"] = record.exc_text
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


def install(logger=None):
    """Puts a JsonFormatter on every handler of ``logger`` (default: the root logger); returns their number."""
    target = logger if logger is not None else logging.getLogger()
    formatter = JsonFormatter()
    for handler in target.handlers:
        handler.setFormatter(formatter)
    return len(target.handlers)


def install_from_env(environ=None, logger=None):
    """install() when LOOMWORKS_LOG_FORMAT is "json"; returns the number of handlers switched."""
    env = os.environ if environ is None else environ
    if env.get(ENV_VAR, "").strip().lower() != "json":
        return 0
    return install(logger)
