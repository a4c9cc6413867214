"""A read-only, time-limited SQLite database for agents' queries.

:class:`ReadOnlyDatabase` loads a SQL dump into an in-memory database and then locks it down in
four independent layers, so that no agent text can modify it, reach the file system or run for
long:

1. ``PRAGMA query_only=ON``: SQLite refuses every write.
2. An authorizer (:meth:`sqlite3.Connection.set_authorizer`) that allows only ``SELECT``, reading
   columns, calling functions (except ``load_extension``), recursive CTEs and a few read-only
   ``PRAGMA`` queries (``table_info`` ...); everything else (``INSERT``, ``UPDATE``, ``DELETE``,
   ``CREATE``, ``DROP``, ``ATTACH``, ``DETACH``, transactions, other ``PRAGMA``\\ s...) is denied.
3. SQLite limits (:meth:`sqlite3.Connection.setlimit`): no attached databases, strings and blobs
   of at most 1 MB, bounded SQL length, expression depth and compound selects.
4. A progress handler that aborts a query after ``max_vm_steps`` virtual-machine steps or
   ``timeout_s`` seconds of wall-clock time, whichever comes first (recursive CTE bombs,
   cartesian products): the query fails with :class:`~toolgym.core.errors.ToolError` code
   ``timeout``. The handler runs only between VM instructions, so two more locks hold the time
   limit for work done *inside* one instruction: ``printf``/``format`` refuse a width or
   precision above the string limit (SQLite's ``printf('%.*c', 2000000000, 'x')`` would loop
   for a minute in one call) and check the deadline themselves, and a watchdog thread
   interrupts a query still running ``WATCHDOG_GRACE_S`` after its deadline (expensive
   built-ins on every row of a recursive CTE).

Results are rendered as a compact text table, at most ``max_rows`` rows, with a footer saying how
many rows there were (or that there were more than could be counted).
"""

from __future__ import annotations

import hashlib
import re
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from toolgym.core.errors import ErrorCode, ToolError, did_you_mean

PROGRESS_INTERVAL = 1_000
"""SQLite VM instructions between two calls of the progress handler."""
MAX_CELL_CHARS = 200
"""Longer cell values are cut in the rendered table."""
MAX_COUNTED_ROWS = 10_000
"""Rows beyond the shown ones are counted up to this number."""
WATCHDOG_GRACE_S = 0.05
"""How long after its deadline a query still running is interrupted by the watchdog thread."""
READ_ONLY_PRAGMAS = frozenset({"table_info", "table_xinfo", "foreign_key_list", "index_list", "index_info"})
"""``PRAGMA`` queries an agent may run (``PRAGMA table_info(t)``): they only read the schema."""
DENIED_FUNCTIONS = frozenset({"load_extension", "fts3_tokenizer", "readfile", "writefile", "edit"})
"""SQL functions an agent may not call (extension loading, tokenizer pointers, file access)."""
LIMITS: dict[int, int] = {
    sqlite3.SQLITE_LIMIT_ATTACHED: 0,
    sqlite3.SQLITE_LIMIT_LENGTH: 1_000_000,
    sqlite3.SQLITE_LIMIT_SQL_LENGTH: 100_000,
    sqlite3.SQLITE_LIMIT_EXPR_DEPTH: 100,
    sqlite3.SQLITE_LIMIT_COMPOUND_SELECT: 50,
    sqlite3.SQLITE_LIMIT_FUNCTION_ARG: 32,
    sqlite3.SQLITE_LIMIT_LIKE_PATTERN_LENGTH: 1_000,
    sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER: 0,
    sqlite3.SQLITE_LIMIT_TRIGGER_DEPTH: 0,
}
"""SQLite run-time limits applied to every agent-facing connection."""


@dataclass(frozen=True)
class Column:
    """One column of a table, as ``describe`` shows it."""

    name: str
    type: str
    not_null: bool
    primary_key: bool


@dataclass(frozen=True)
class TableInfo:
    """A table's schema and size, read once when the database is loaded."""

    name: str
    columns: tuple[Column, ...]
    foreign_keys: tuple[tuple[str, str, str], ...]
    """``(column, referenced table, referenced column)``."""
    row_count: int
    sample: str
    """The first 3 rows, rendered as a table."""


@lru_cache(maxsize=64)
def _load_image(path: str) -> bytes:
    """The serialized bytes of the database built from the dump at ``path`` (once per process)."""
    conn = sqlite3.connect(":memory:")
    try:
        conn.executescript(Path(path).read_text(encoding="utf-8"))
        return conn.serialize()
    finally:
        conn.close()


def _cell(value: Any) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, float):
        text = format(value, ".15g")
    elif isinstance(value, bytes):
        text = f"x'{value[:32].hex()}'" + ("…" if len(value) > 32 else "")
    else:
        text = str(value)
    text = " ".join(text.split()) if "\n" in text or "\t" in text else text
    return text if len(text) <= MAX_CELL_CHARS else text[:MAX_CELL_CHARS] + "…"


def render_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A compact text table: ``"a | b"`` header line, then one ``" | "``-joined line per row."""
    lines = [" | ".join(header)]
    lines += [" | ".join(_cell(v) for v in row) for row in rows]
    return "\n".join(lines)


class ReadOnlyDatabase:
    """An in-memory SQLite database loaded from a SQL dump and served read-only.

    Args:
        dump_path: A ``.sql`` file (``CREATE TABLE`` / ``INSERT`` statements).
        max_rows: Most rows a query shows.
        timeout_s: Wall-clock limit of one query, in seconds.
        max_vm_steps: Limit of one query in SQLite virtual-machine instructions (deterministic,
            unlike the wall clock).

    The object is not thread-safe (queries take a lock) and not picklable; envs open their own.
    """

    def __init__(
        self,
        dump_path: Path | str,
        *,
        max_rows: int = 50,
        timeout_s: float = 1.0,
        max_vm_steps: int = 20_000_000,
    ) -> None:
        self.path = Path(dump_path)
        self.max_rows = max_rows
        self.timeout_s = timeout_s
        self.max_vm_steps = max_vm_steps
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)
        self._conn.deserialize(_load_image(str(self.path.resolve())))
        self.tables = self._read_schema()
        self._conn.execute("PRAGMA query_only = ON")
        for limit, value in LIMITS.items():
            self._conn.setlimit(limit, value)
        self._conn.set_authorizer(_authorize)
        self._deadline = 0.0
        self._steps = 0
        self._refused: str | None = None
        self._conn.set_progress_handler(self._progress, PROGRESS_INTERVAL)
        # printf/format run by a private connection after their sizes are checked (see
        # _safe_printf); registering them here shadows SQLite's built-ins on the agent's side.
        self._printf_conn = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)
        self._printf_conn.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, LIMITS[sqlite3.SQLITE_LIMIT_LENGTH])
        for name in ("printf", "format"):
            self._conn.create_function(name, -1, self._safe_printf, deterministic=True)

    # ------------------------------------------------------------------ schema
    def _read_schema(self) -> dict[str, TableInfo]:
        names = [r[0] for r in self._conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name"
        )]
        tables: dict[str, TableInfo] = {}
        for name in names:
            quoted = '"' + name.replace('"', '""') + '"'
            columns = tuple(
                Column(r[1], r[2] or "", bool(r[3]), bool(r[5]))
                for r in self._conn.execute(f"PRAGMA table_info({quoted})")
            )
            fks = tuple((r[3], r[2], r[4]) for r in self._conn.execute(f"PRAGMA foreign_key_list({quoted})"))
            count = self._conn.execute(f"SELECT COUNT(*) FROM {quoted}").fetchone()[0]
            cursor = self._conn.execute(f"SELECT * FROM {quoted} LIMIT 3")
            sample = render_table([d[0] for d in cursor.description], cursor.fetchall())
            tables[name] = TableInfo(name, columns, fks, count, sample)
        return tables

    def list_tables(self) -> str:
        """One line per table: ``"name (N rows)"``."""
        return "\n".join(f"{t.name} ({t.row_count} rows)" for t in self.tables.values())

    def describe(self, table: str) -> str:
        """Columns (type, key, NOT NULL), foreign keys, row count and three sample rows of ``table``.

        Raises:
            ToolError: for an unknown table (listing the tables).
        """
        wanted = table.strip().strip('"`[]').strip()
        info = next((t for t in self.tables.values() if t.name.lower() == wanted.lower()), None)
        if info is None:
            raise ToolError(
                f"No table named {table[:80]!r}." + did_you_mean(wanted, self.tables)
                + f" Tables: {', '.join(self.tables)}."
            )
        lines = [f"Table {info.name} ({info.row_count} rows)", "Columns:"]
        for c in info.columns:
            flags = " PRIMARY KEY" if c.primary_key else ""
            flags += " NOT NULL" if c.not_null and not c.primary_key else ""
            lines.append(f"  {c.name} {c.type}{flags}")
        if info.foreign_keys:
            lines.append("Foreign keys:")
            lines += [f"  {col} -> {ref}({ref_col})" for col, ref, ref_col in info.foreign_keys]
        lines += ["Sample rows:", info.sample]
        return "\n".join(lines)

    # ------------------------------------------------------------------ queries
    def _safe_printf(self, fmt: Any = None, *args: Any) -> Any:
        """SQLite's ``printf``, refusing widths and precisions that would run past the limits."""
        if time.perf_counter() > self._deadline:
            self._refused = "timeout"
            raise sqlite3.OperationalError("interrupted")
        if fmt is None:
            return None
        limit = LIMITS[sqlite3.SQLITE_LIMIT_LENGTH]
        text = fmt if isinstance(fmt, str) else self._printf_conn.execute("SELECT CAST(? AS TEXT)", (fmt,)).fetchone()[0]
        args = list(args)
        position = 0
        for match in _PRINTF_SPEC.finditer(text or ""):
            width, precision, conversion = match.group(1), match.group(2), match.group(3)
            for part in (width, precision):
                if part == "*":
                    if position < len(args):
                        # As printf would read it; then passed on as that integer, so the check
                        # and the formatting cannot disagree.
                        args[position] = self._printf_conn.execute(
                            "SELECT CAST(? AS INTEGER)", (args[position],)
                        ).fetchone()[0] or 0
                        value = abs(args[position])
                    else:
                        value = 0
                    position += 1
                else:
                    value = int(part or 0)
                if value > limit:
                    self._refused = f"a printf width or precision of {value:,} (at most {limit:,})"
                    raise sqlite3.OperationalError("printf width or precision too large")
            if conversion != "%":
                position += 1
        marks = ", ".join("?" * (len(args) + 1))
        return self._printf_conn.execute(f"SELECT printf({marks})", (text, *args)).fetchone()[0]

    def _progress(self) -> int:
        self._steps += PROGRESS_INTERVAL
        return int(self._steps > self.max_vm_steps or time.perf_counter() > self._deadline)

    def query(self, sql: str) -> str:
        """Run one read-only statement and render its result.

        Raises:
            ToolError: code ``timeout`` when the query exceeds its time or step budget; code
                ``tool_error`` for SQL errors, writes and other denied statements.
        """
        if not sql.strip().strip(";").strip():
            raise ToolError("The query is empty; write one SELECT statement, e.g. 'SELECT * FROM t LIMIT 5'.")
        with self._lock, _WATCHDOG.watching(self):
            self._steps = 0
            self._refused = None
            self._deadline = time.perf_counter() + self.timeout_s
            try:
                cursor = self._conn.execute(sql)
            except sqlite3.Error as exc:
                raise self._error(exc, sql) from None
            except (ValueError, UnicodeError, OverflowError, MemoryError) as exc:  # NUL bytes, surrogates
                raise ToolError(f"The query cannot be run: {type(exc).__name__}: {str(exc)[:200]}") from None
            if cursor.description is None:
                return "Statement executed; it returns no rows."
            header = [d[0] for d in cursor.description]
            try:
                rows = cursor.fetchmany(self.max_rows)
                more, complete = 0, True
                if len(rows) == self.max_rows:
                    while more < MAX_COUNTED_ROWS:
                        extra = cursor.fetchmany(min(1_000, MAX_COUNTED_ROWS - more))
                        if not extra:
                            break
                        more += len(extra)
                    else:
                        complete = cursor.fetchone() is None
            except sqlite3.OperationalError as exc:
                if "interrupted" not in str(exc) or not rows:
                    raise self._error(exc, sql) from None
                complete = False  # enough rows to show; counting the rest ran out of time
            except sqlite3.Error as exc:
                raise self._error(exc, sql) from None
            finally:
                cursor.close()
        table = render_table(header, rows)
        if more == 0 and complete:
            footer = f"({len(rows)} row{'s' if len(rows) != 1 else ''})"
        elif complete:
            footer = f"({len(rows)} of {len(rows) + more} rows shown; add LIMIT/WHERE or aggregate to see others)"
        else:
            footer = (f"({len(rows)} rows shown; the query returns more than {len(rows) + more} rows, "
                      "which were not all counted)")
        return f"{table}\n{footer}"

    def _error(self, exc: sqlite3.Error, sql: str) -> ToolError:
        message = str(exc)
        if self._refused is not None and self._refused != "timeout":
            return ToolError(
                f"The query was stopped: it asked for {self._refused}, which would run past the "
                f"time limit ({self.timeout_s:g} s).",
                ErrorCode.TIMEOUT,
            )
        if "interrupted" in message or self._refused == "timeout":
            return ToolError(
                f"The query was stopped: it ran longer than its limit ({self.timeout_s:g} s or "
                f"{self.max_vm_steps:,} SQLite steps). Add WHERE conditions or LIMIT, and avoid "
                "unbounded recursive CTEs and large cross joins.",
                ErrorCode.TIMEOUT,
            )
        if any(word in message for word in ("not authorized", "authorization denied", "prohibited", "readonly")):
            return ToolError(
                "Not allowed: the database is read-only and only SELECT queries (with WITH, JOIN, "
                "subqueries...) may be run; use list_tables and describe to explore the schema. "
                f"SQLite said: {message}."
            )
        if isinstance(exc, sqlite3.ProgrammingError) and "one statement" in message:
            return ToolError("Run one statement per query call (remove the ';' between statements).")
        return ToolError(f"SQL error: {message}. The query was: {sql[:300]!r}")

    def content_hash(self) -> str:
        """SHA-256 of every table's schema and rows (to check that nothing was modified)."""
        digest = hashlib.sha256()
        with self._lock:
            self._conn.set_authorizer(None)
            self._conn.set_progress_handler(None, 0)
            try:
                for row in self._conn.execute("SELECT type, name, sql FROM sqlite_master ORDER BY name"):
                    digest.update(repr(row).encode())
                for name in self.tables:
                    for row in self._conn.execute(f'SELECT * FROM "{name}" ORDER BY rowid'):
                        digest.update(repr(row).encode())
                digest.update(repr(self._conn.execute("PRAGMA query_only").fetchone()).encode())
            finally:
                self._conn.set_authorizer(_authorize)
                self._conn.set_progress_handler(self._progress, PROGRESS_INTERVAL)
        return digest.hexdigest()

    def close(self) -> None:
        """Close the connection."""
        self._conn.close()
        self._printf_conn.close()


_PRINTF_SPEC = re.compile(r"%[-+ #0,!]*(\*|\d+)?(?:\.(\*|\d+))?(?:ll|l)?(.|$)", re.S)
"""One conversion of SQLite's printf: flags, width, precision, length modifier, conversion."""


class _Watchdog:
    """One daemon thread that interrupts queries still running past their deadline.

    The progress handler stops a query only between VM instructions; a built-in that is slow on
    every row could otherwise overrun the limit by seconds. Queries register while they run
    (a dict update, no thread wake-up unless the thread sleeps); the thread checks every
    ``WATCHDOG_GRACE_S`` while any query runs and sleeps otherwise.
    """

    def __init__(self) -> None:
        self._active: dict[int, ReadOnlyDatabase] = {}
        self._lock = threading.Lock()
        self._work = threading.Event()
        self._thread: threading.Thread | None = None

    @contextmanager
    def watching(self, db: ReadOnlyDatabase) -> Iterator[None]:
        """Watch ``db``'s running query (its ``_deadline``) until the block ends."""
        with self._lock:
            self._active[id(db)] = db
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="toolgym-sql-watchdog", daemon=True)
                self._thread.start()
        if not self._work.is_set():
            self._work.set()
        try:
            yield
        finally:
            with self._lock:
                self._active.pop(id(db), None)

    def _run(self) -> None:
        while True:
            self._work.wait()
            time.sleep(WATCHDOG_GRACE_S)
            now = time.perf_counter()
            with self._lock:
                late = [db for db in self._active.values() if now > db._deadline + WATCHDOG_GRACE_S]
                if not self._active:
                    self._work.clear()
            for db in late:
                # Re-checked: the query may have ended (and the next one begun) meanwhile.
                if id(db) not in self._active or time.perf_counter() <= db._deadline + WATCHDOG_GRACE_S:
                    continue
                try:
                    db._conn.interrupt()
                except sqlite3.Error:
                    pass


_WATCHDOG = _Watchdog()


def _authorize(action: int, arg1: str | None, arg2: str | None, db: str | None, source: str | None) -> int:
    """SQLite authorizer: reads only (see the module docstring)."""
    if action in (sqlite3.SQLITE_SELECT, sqlite3.SQLITE_READ, sqlite3.SQLITE_RECURSIVE):
        return sqlite3.SQLITE_OK
    if action == sqlite3.SQLITE_FUNCTION:
        return sqlite3.SQLITE_DENY if (arg2 or "").lower() in DENIED_FUNCTIONS else sqlite3.SQLITE_OK
    if action == sqlite3.SQLITE_PRAGMA and (arg1 or "").lower() in READ_ONLY_PRAGMAS:
        return sqlite3.SQLITE_OK
    return sqlite3.SQLITE_DENY
