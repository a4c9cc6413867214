"""``ToolGym/SQL-v0``: questions over generated SQLite databases, answered with read-only SQL."""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

from toolgym.core.answers import normalize_answer
from toolgym.core.errors import ConfigError, ToolError
from toolgym.core.tasks import Task, data_root
from toolgym.core.tools import Tool
from toolgym.envs.calc.grading import ABS_TOL, REL_TOL, number_matches
from toolgym.envs.sql.database import ReadOnlyDatabase
from toolgym.envs.turn_end import SingleRequestEnv

_DB_NAME_RE = re.compile(r"^[a-z]+_[a-z]+_[0-9]+$")
_LIST_SPLIT_RE = re.compile(r"[,;\n]")


def list_items(answer: str) -> list[str]:
    """The normalised items of a list answer (split on commas, semicolons and newlines; a
    leading "and" of an item is dropped; empty items are ignored)."""
    items = []
    for part in _LIST_SPLIT_RE.split(answer):
        item = normalize_answer(re.sub(r"^\s*and\s+", "", part))
        if item:
            items.append(item)
    return items


def grade(kind: str, answer: str, gold: Any, decimals: int | None = None) -> bool:
    """Grade a SQL-v0 answer.

    Args:
        kind: ``"number"`` (exactly one number, relative tolerance 1e-6, or half a unit of the
            last decimal when the question asks for ``decimals``), ``"text"`` (normalised exact
            match) or ``"list"`` (the same multiset of normalised items, any order).
        answer: The agent's final answer.
        gold: The ground truth (number text, name, or list of names).
        decimals: Decimals the question asked to round to, if any.
    """
    if kind == "number":
        abs_tol = 0.5 * 10.0 ** (-decimals) + 1e-9 if decimals is not None else ABS_TOL
        return number_matches(answer, str(gold), rel_tol=REL_TOL, abs_tol=abs_tol)
    if kind == "text":
        got = normalize_answer(answer.strip().strip("'\"`"))
        return bool(got) and got == normalize_answer(str(gold))
    if kind == "list":
        golds = gold if isinstance(gold, list) else [gold]
        return Counter(list_items(answer)) == Counter(normalize_answer(str(g)) for g in golds)
    raise ConfigError(f"Unknown SQL-v0 answer kind {kind!r}; expected 'number', 'text' or 'list'.")


class SQLEnv(SingleRequestEnv):
    """Answer questions about a relational database by exploring it and querying it with SQL.

    ## Description
    Each task is a question about one generated SQLite database, e.g. "Which students majoring
    in Physics take a course taught by Ada Baker? Answer with a comma-separated list of names, in
    any order." The database depends on the difficulty: ``easy`` a single ``employees`` table;
    ``medium`` ``customers``/``products``/``orders`` (joins); ``hard`` a five-table university
    schema (joins over 4–5 tables, grouping, ``HAVING``, subqueries). Every split has its own
    database instances, so facts learned in training do not answer test questions.

    The database is read-only (``query_only``, an authorizer that admits only reads, SQLite
    limits) and every query has a time and step budget: writes, ``ATTACH``, ``PRAGMA`` changes and
    ``load_extension`` fail with ``tool_error``; runaway queries (recursive CTE bombs, cartesian
    products) fail with ``timeout`` within about a second. Nothing an agent sends can change it.

    ## Action Space
    Text in the env's action format (default Hermes): a call of ``list_tables()``,
    ``describe(table)`` or ``query(sql)``, or ``<answer>...</answer>``.

    ## Observation Space
    Text: first the instructions and the question, then each tool's output. ``list_tables``
    returns ``"name (N rows)"`` lines; ``describe`` the columns, keys and 3 sample rows; ``query``
    a table (``"col | col"`` header, one line per row, at most ``max_rows`` rows) and a footer
    such as ``"(3 rows)"`` or ``"(50 of 240 rows shown; ...)"``.

    ## Rewards
    ``success_reward`` (1.0) for a correct answer, 0 otherwise: numbers within relative tolerance
    1e-6 (or half a unit of the last decimal asked for), names by normalised exact match, lists
    as the same set of names in any order. Invalid actions add the ``invalid_action`` penalty.

    ## Starting State
    A question drawn with the env's RNG from the split (or the one named in ``options``); its
    database is opened read-only (once per env and database, then reused).

    ## Episode End
    Terminates on a final answer (or on too many invalid actions if the policy says so);
    truncates after ``max_turns`` steps.
    With ``turn_end="no_call"``, also on any action without a parseable tool call or final
    answer (unanswered: reward 0; see :class:`~toolgym.envs.turn_end.SingleRequestEnv`).

    ## Arguments
    Those of :class:`~toolgym.core.env.ToolEnv`, plus ``turn_end`` (``"tool"``, default, or
    ``"no_call"``: see :class:`~toolgym.envs.turn_end.SingleRequestEnv`), ``max_rows`` (50: rows
    a query shows), ``query_timeout_s`` (1.0: wall-clock limit of one query) and ``max_vm_steps`` (20,000,000:
    SQLite instruction limit of one query). ``difficulty`` is ``"easy"``, ``"medium"`` or
    ``"hard"``.

    ## Version History
    * v0: initial release.
    """

    data_name = "sql"
    oracle_cls = "toolgym.envs.sql.oracle:SQLOracle"

    def __init__(
        self,
        *,
        max_rows: int = 50,
        query_timeout_s: float = 1.0,
        max_vm_steps: int = 20_000_000,
        **kwargs: Any,
    ) -> None:
        if max_rows < 1 or query_timeout_s <= 0 or max_vm_steps < 1:
            raise ConfigError(
                f"max_rows, query_timeout_s and max_vm_steps must be positive, got {max_rows!r}, "
                f"{query_timeout_s!r}, {max_vm_steps!r}."
            )
        self.max_rows = int(max_rows)
        self.query_timeout_s = float(query_timeout_s)
        self.max_vm_steps = int(max_vm_steps)
        self._databases: dict[str, ReadOnlyDatabase] = {}
        self._db: ReadOnlyDatabase | None = None
        super().__init__(**kwargs)

    # ------------------------------------------------------------------ episode
    def database(self, name: str) -> ReadOnlyDatabase:
        """The read-only database called ``name`` (``envs_data/sql/databases/<name>.sql``),
        opened on first use and reused.

        Raises:
            ConfigError: for a malformed name or a missing dump.
        """
        db = self._databases.get(name)
        if db is None:
            if not _DB_NAME_RE.match(name):
                raise ConfigError(f"Malformed database name {name!r}; expected e.g. 'shop_test_0'.")
            path = data_root() / self.data_name / "databases" / f"{name}.sql"
            if not path.is_file():
                raise ConfigError(f"No database dump {path}.")
            db = self._databases[name] = ReadOnlyDatabase(
                path, max_rows=self.max_rows, timeout_s=self.query_timeout_s, max_vm_steps=self.max_vm_steps
            )
        return db

    def start_episode(self, task: Task) -> None:
        """Open (or reuse) the task's database."""
        self._db = None
        self._db = self.database(str(task.metadata.get("database", "")))

    def close(self) -> None:
        """Close every opened database."""
        for db in self._databases.values():
            db.close()
        self._databases.clear()
        self._db = None
        super().close()

    def __getstate__(self) -> dict[str, Any]:
        # sqlite3 connections cannot be pickled: the clone reopens its databases on demand.
        state = super().__getstate__()
        state["_databases"] = {}
        state["_db"] = None
        state["_db_name"] = None if self._task is None else self._task.metadata.get("database")
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        name = state.pop("_db_name", None)
        super().__setstate__(state)
        if name:
            self._db = self.database(str(name))

    # ------------------------------------------------------------------ tools
    def make_tools(self) -> list[Tool]:
        """``list_tables``, ``describe`` and ``query``."""
        return [
            Tool(
                name="list_tables",
                description="List the database's tables with their row counts.",
                parameters={"type": "object", "properties": {}, "additionalProperties": False},
                fn=self._list_tables,
            ),
            Tool(
                name="describe",
                description=(
                    "Describe a table: its columns (type, PRIMARY KEY, NOT NULL), foreign keys, "
                    "row count and three sample rows."
                ),
                parameters={
                    "type": "object",
                    "properties": {"table": {"type": "string", "minLength": 1, "description": "A table name."}},
                    "required": ["table"],
                    "additionalProperties": False,
                },
                fn=self._describe,
            ),
            Tool(
                name="query",
                description=(
                    "Run one read-only SQLite statement (SELECT, WITH ... SELECT) and return the "
                    f"result as a table of at most {self.max_rows} rows. The database cannot be "
                    f"modified; queries are stopped after {self.query_timeout_s:g} s."
                ),
                parameters={
                    "type": "object",
                    "properties": {
                        "sql": {
                            "type": "string",
                            "minLength": 1,
                            "maxLength": 20_000,
                            "description": "The SQL query, e.g. 'SELECT name FROM customers LIMIT 5'.",
                        }
                    },
                    "required": ["sql"],
                    "additionalProperties": False,
                },
                fn=self._query,
            ),
        ]

    def _current(self) -> ReadOnlyDatabase:
        if self._db is None:
            raise ToolError("No database is open; call reset() to start an episode.")
        return self._db

    def _list_tables(self) -> str:
        return self._current().list_tables()

    def _describe(self, table: str) -> str:
        return self._current().describe(table)

    def _query(self, sql: str) -> str:
        return self._current().query(sql)

    # ------------------------------------------------------------------ grading
    def check_answer(self, task: Task, answer: str) -> bool:
        """See :func:`grade`; the kind and decimals come from the task's metadata."""
        meta = task.metadata
        return grade(str(meta.get("kind", "text")), answer, task.answer, meta.get("decimals"))
