"""Server-side prepared statements for the few hot write paths (order accept).

psycopg2 sends every statement as text, so PostgreSQL parses and plans it on every call;
for the small statements of the accept path that costs as much server CPU as running them
(measured: about half the backend's CPU per accepted order). A `PreparedStatement` is
PREPAREd once per database session, lazily on first use, and then run with EXECUTE.

PREPARE is not transactional (a rollback keeps it) and a plan that a schema change or
ANALYZE invalidates is re-planned by PostgreSQL itself. Prepared statements live in the
server session, so this needs session-level connections: no PgBouncer in transaction mode.
"""

from __future__ import annotations

import re
import weakref
from collections.abc import Mapping
from typing import Any

from django.db.backends.utils import CursorWrapper

_PLACEHOLDER = re.compile(r"%\((\w+)\)s")
# raw DB-API connection -> names prepared in its session; a new connection starts empty.
_prepared: weakref.WeakKeyDictionary[Any, set[str]] = weakref.WeakKeyDictionary()  # Any: driver


class PreparedStatement:
    """One SQL statement with `%(key)s` placeholders, prepared per connection.

    Each distinct key becomes one `$n` parameter; PostgreSQL infers its type from where it
    is used, so write a cast (`%(payload)s::jsonb`) where the context does not say.
    """

    def __init__(self, name: str, sql: str) -> None:
        self.name = name
        self._keys = list(dict.fromkeys(_PLACEHOLDER.findall(sql)))
        numbers = {key: f"${n}" for n, key in enumerate(self._keys, start=1)}
        self._prepare_sql = f"PREPARE {name} AS " + _PLACEHOLDER.sub(
            lambda m: numbers[m.group(1)], sql
        )
        args = ", ".join(["%s"] * len(self._keys))
        self._execute_sql = f"EXECUTE {name}({args})" if self._keys else f"EXECUTE {name}"

    def execute(self, cursor: CursorWrapper, params: Mapping[str, Any]) -> None:  # Any: DB values
        """Run the statement on `cursor` with `params` (every placeholder's key)."""
        raw = cursor.db.connection
        names = _prepared.get(raw)
        if names is None:
            names = _prepared[raw] = set()
        if self.name not in names:
            cursor.execute(self._prepare_sql)
            names.add(self.name)
        cursor.execute(self._execute_sql, [params[key] for key in self._keys])
