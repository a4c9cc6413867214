"""SQL-v0: the generated databases and questions, the read-only sandbox, and the grader.

The registry-wide suites (``tests/test_env_contract.py``, ``tests/test_oracles.py``) cover the env
contract and the oracle; these tests specify the data and that no query can modify a database,
escape it, or run for long.
"""

from __future__ import annotations

import pickle
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from toolgym.core.actions import ToolCall, get_action_format
from toolgym.core.errors import ToolError
from toolgym.envs.sql.database import ReadOnlyDatabase
from toolgym.envs.sql.env import SQLEnv, grade
from toolgym.envs.sql.oracle import parse_result
from toolgym.envs.sql.templates import FAMILIES, LEVELS, TEMPLATES, parse_question

REPO = Path(__file__).resolve().parents[2]
DATA = REPO / "envs_data" / "sql"
HERMES = get_action_format("hermes")
CTE_BOMB = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c) SELECT count(*) FROM c"


@pytest.fixture
def db() -> Iterator[ReadOnlyDatabase]:
    """The hard (university) test database, opened read-only."""
    database = ReadOnlyDatabase(DATA / "databases" / "university_test_0.sql")
    yield database
    database.close()


# ----------------------------------------------------------------------------- data
@pytest.mark.parametrize("split", ["train", "dev", "test"])
def test_each_level_uses_its_own_schema_family_and_split_databases(split: str) -> None:
    tasks = SQLEnv(split=split).task_set
    levels = tasks.difficulties()
    assert set(levels) == set(LEVELS) and len(set(levels.values())) == 1
    for task in tasks:
        family, db_split, _ = task.metadata["database"].split("_")
        assert family == FAMILIES[task.difficulty] and db_split == split, task.id


def test_hard_databases_have_at_least_four_tables() -> None:
    env = SQLEnv(split="test")
    assert len(env.database("company_test_0").tables) == 1
    assert len(env.database("shop_test_0").tables) == 3
    assert len(env.database("university_test_0").tables) >= 4


@pytest.mark.parametrize("split", ["train", "dev", "test"])
def test_every_question_reads_back_and_its_answer_is_the_gold_query_result(split: str) -> None:
    # Independent of the env's sandbox and of the oracle: a plain sqlite3 database from the dump.
    connections: dict[str, sqlite3.Connection] = {}
    for task in SQLEnv(split=split).task_set:
        readings = parse_question(task.prompt)
        assert [(t.key, p) for t, p in readings] == [(task.metadata["template"], task.metadata["params"])], task.id
        template = readings[0][0]
        assert template.render_sql(task.metadata["params"]) == task.metadata["sql"]
        name = task.metadata["database"]
        if name not in connections:
            connections[name] = sqlite3.connect(":memory:")
            connections[name].executescript((DATA / "databases" / f"{name}.sql").read_text(encoding="utf-8"))
        rows = connections[name].execute(task.metadata["sql"]).fetchall()
        values = [str(r[0]) if not isinstance(r[0], float) else format(r[0], ".15g") for r in rows]
        expected = task.answer if isinstance(task.answer, list) else [task.answer]
        assert sorted(values) == sorted(expected), task.id
        assert grade(task.metadata["kind"], ", ".join(values), task.answer, task.metadata["decimals"]), task.id


def test_every_template_is_used_in_the_test_split() -> None:
    used = {t.metadata["template"] for t in SQLEnv(split="test").task_set}
    assert used == {t.key for t in TEMPLATES}


# ----------------------------------------------------------------------------- sandbox
NASTY_SQL: list[tuple[str, str, str]] = [
    ("SELEC name FROM students", "tool_error", "syntax error"),
    ("SELECT nope FROM students", "tool_error", "no such column"),
    ("SELECT * FROM nowhere", "tool_error", "no such table"),
    ("DROP TABLE students", "tool_error", "read-only"),
    ("DELETE FROM students", "tool_error", "read-only"),
    ("INSERT INTO students VALUES (999, 'Eve', 1, 2020)", "tool_error", "read-only"),
    ("UPDATE enrollments SET grade = 100", "tool_error", "read-only"),
    ("REPLACE INTO departments VALUES (1, 'X', 'Y')", "tool_error", "read-only"),
    ("CREATE TABLE t (x)", "tool_error", "read-only"),
    ("CREATE TEMP TABLE t (x)", "tool_error", "read-only"),
    ("CREATE VIEW v AS SELECT 1", "tool_error", "read-only"),
    ("CREATE TRIGGER t AFTER INSERT ON students BEGIN SELECT 1; END", "tool_error", "read-only"),
    ("ALTER TABLE students ADD COLUMN x", "tool_error", "read-only"),
    ("ATTACH DATABASE '/tmp/toolgym_attack.db' AS evil", "tool_error", "read-only"),
    ("ATTACH DATABASE ':memory:' AS evil", "tool_error", "read-only"),
    ("DETACH DATABASE main", "tool_error", "read-only"),
    ("PRAGMA writable_schema=1", "tool_error", "read-only"),
    ("PRAGMA query_only=0", "tool_error", "read-only"),
    ("PRAGMA journal_mode=WAL", "tool_error", "read-only"),
    ("SELECT load_extension('/tmp/evil.so')", "tool_error", "read-only"),
    ("SELECT fts3_tokenizer('simple')", "tool_error", "read-only"),
    ("BEGIN", "tool_error", "read-only"),
    ("SAVEPOINT s", "tool_error", "read-only"),
    ("VACUUM", "tool_error", "read-only"),
    ("VACUUM INTO '/tmp/toolgym_copy.db'", "tool_error", "read-only"),
    ("ANALYZE", "tool_error", "read-only"),
    ("REINDEX", "tool_error", "read-only"),
    ("SELECT 1; DROP TABLE students", "tool_error", "one statement"),
    ("", "tool_error", "empty"),
    (" ; ", "tool_error", "empty"),
    ("SELECT ?", "tool_error", "sql error"),
    ("SELECT '\x00'", "tool_error", "null character"),
    ("SELECT '\ud800'", "tool_error", "cannot be run"),
    ("SELECT randomblob(1000000000)", "tool_error", "too big"),
    ("SELECT zeroblob(100000000)", "tool_error", "too big"),
    ("WITH RECURSIVE c(x) AS (SELECT 'a' UNION ALL SELECT x || x FROM c) SELECT length(x) FROM c", "tool_error",
     "too big"),
    ("SELECT * FROM students WHERE name LIKE '" + "%" * 5000 + "'", "tool_error", "too complex"),
    ("SELECT " + "(" * 500 + "1" + ")" * 500, "tool_error", "sql error"),
    (CTE_BOMB, "timeout", "stopped"),
    # One built-in call that never yields to the progress handler (SQLite loops ~30 s in it).
    ("SELECT printf('%.*c', 2000000000, 'x')", "timeout", "stopped"),
    ("SELECT format('%2000000000c', 'x')", "timeout", "stopped"),
    ("SELECT printf('%.*c', '2000000000', 'x')", "timeout", "stopped"),
    ("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c) "
     "SELECT max(length(printf('%.*c', 900000, 'x'))) FROM c", "timeout", "stopped"),
    ("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c) SELECT x FROM c ORDER BY x DESC LIMIT 1",
     "timeout", "stopped"),
    ("SELECT count(*) FROM enrollments a, enrollments b, enrollments c", "timeout", "stopped"),
    ("SELECT max(a.grade + b.grade + c.grade) FROM enrollments a, enrollments b, enrollments c", "timeout",
     "stopped"),
]


@pytest.mark.parametrize(("sql", "code", "message"), NASTY_SQL, ids=range(len(NASTY_SQL)))
def test_nasty_queries_fail_clearly_quickly_and_change_nothing(
    db: ReadOnlyDatabase, sql: str, code: str, message: str
) -> None:
    before = db.content_hash()
    started = time.perf_counter()
    with pytest.raises(ToolError) as caught:
        db.query(sql)
    assert time.perf_counter() - started < 1.5
    assert caught.value.code == code and message in caught.value.message.lower(), caught.value.message
    assert db.content_hash() == before
    assert not Path("/tmp/toolgym_attack.db").exists() and not Path("/tmp/toolgym_copy.db").exists()


def test_the_recursive_cte_bomb_times_out_within_a_second(db: ReadOnlyDatabase) -> None:
    started = time.perf_counter()
    with pytest.raises(ToolError) as caught:
        db.query(CTE_BOMB)
    assert caught.value.code == "timeout" and time.perf_counter() - started < 1.2


def test_wall_clock_limit_applies_when_the_step_budget_is_large() -> None:
    slow = ReadOnlyDatabase(DATA / "databases" / "university_test_0.sql", timeout_s=0.2, max_vm_steps=10**12)
    started = time.perf_counter()
    with pytest.raises(ToolError) as caught:
        slow.query(CTE_BOMB)
    assert caught.value.code == "timeout" and time.perf_counter() - started < 0.6


def test_printf_still_formats_like_sqlite(db: ReadOnlyDatabase) -> None:
    out = db.query("SELECT printf('%5.2f;%s;%d;%%;%*d;%-3s;', 3.14159, 'a', 7, 4, 2, 'b'), format('%.3c', 'x')")
    assert parse_result(out) == [[" 3.14;a;7;%;   2;b  ;", "xxx"]], out


def test_the_watchdog_stops_slow_built_ins_on_every_row() -> None:
    # Each row costs milliseconds inside built-ins, so the progress handler (every 1,000 VM
    # steps, about 100 rows here) alone overruns the limit; the watchdog interrupts the query.
    quick = ReadOnlyDatabase(DATA / "databases" / "university_test_0.sql", timeout_s=0.2)
    sql = (
        "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c) SELECT max(length(replace(replace("
        "replace(hex(zeroblob(450000 + x % 2)), '0', '1'), '1', '2'), '2', '3'))) FROM c"
    )
    started = time.perf_counter()
    with pytest.raises(ToolError) as caught:
        quick.query(sql)
    assert caught.value.code == "timeout"
    assert time.perf_counter() - started < 0.2 + 0.5  # about 1.6 s without the watchdog
    assert quick.query("SELECT 1 AS one").startswith("one")  # not interrupted afterwards


def test_a_cartesian_product_shows_the_first_rows_without_counting_them_all(db: ReadOnlyDatabase) -> None:
    started = time.perf_counter()
    out = db.query("SELECT * FROM enrollments a, enrollments b, enrollments c")
    assert time.perf_counter() - started < 1.5
    rows = parse_result(out)
    assert rows is not None and len(rows) == 50
    assert "not all counted" in out.splitlines()[-1]


def test_writes_fail_even_without_the_authorizer(db: ReadOnlyDatabase) -> None:
    # Defence in depth: query_only alone refuses writes.
    db._conn.set_authorizer(None)
    with pytest.raises(sqlite3.OperationalError, match="readonly"):
        db._conn.execute("DELETE FROM students")


def test_the_row_limit_reports_how_many_rows_were_cut(db: ReadOnlyDatabase) -> None:
    total = db.tables["enrollments"].row_count
    out = db.query("SELECT * FROM enrollments")
    assert out.splitlines()[-1].startswith(f"(50 of {total} rows shown")
    assert len(parse_result(out) or []) == 50
    assert db.query("SELECT name FROM departments WHERE id = 1").endswith("(1 row)")
    assert db.query("SELECT name FROM departments WHERE id = -1") == "name\n(0 rows)"


def test_schema_exploration(db: ReadOnlyDatabase) -> None:
    assert db.list_tables().splitlines()[0].startswith("courses (")
    text = db.describe("Courses")
    assert "instructor_id INTEGER NOT NULL" in text and "instructor_id -> instructors(id)" in text
    assert "Sample rows:" in text
    assert "cid | name | type" in db.query("PRAGMA table_info(students)")
    with pytest.raises(ToolError, match="Did you mean 'students'"):
        db.describe("student")


def test_nothing_an_agent_sends_changes_the_database_through_the_env() -> None:
    env = SQLEnv(split="test", max_turns=200)
    task = next(t for t in env.task_set if t.difficulty == "hard")
    env.reset(options={"task_id": task.id})
    before = env.database(task.metadata["database"]).content_hash()
    for sql, code, _ in NASTY_SQL:
        if code == "timeout":
            continue
        *_, info = env.step(HERMES.render(ToolCall("query", {"sql": sql})))
        assert info["error"] in {"tool_error", "schema_violation"}, (sql[:60], info["error"])
    *_, info = env.step(HERMES.render(ToolCall("query", {"sql": CTE_BOMB})))
    assert info["error"] == "timeout"
    assert env.database(task.metadata["database"]).content_hash() == before
    *_, info = env.step(HERMES.render(ToolCall("query", {"sql": "SELECT COUNT(*) AS n FROM students"})))
    assert info["error"] is None and info["tool_output"].startswith("n\n")


def test_env_reopens_its_database_after_pickling() -> None:
    env = SQLEnv(split="test")
    env.reset(seed=4)
    clone = pickle.loads(pickle.dumps(env))
    *_, info = clone.step(HERMES.render(ToolCall("list_tables", {})))
    assert info["error"] is None and "rows)" in info["tool_output"]


# ----------------------------------------------------------------------------- grading
@pytest.mark.parametrize(
    ("kind", "answer", "gold", "decimals", "ok"),
    [
        ("number", "12", "12", None, True),
        ("number", "There are 12 employees.", "12", None, True),
        ("number", "13", "12", None, False),
        ("number", "56123.33", "56123.33", 2, True),
        ("number", "56,123.333", "56123.33", 2, True),  # more precise than asked: fine
        ("number", "56.34", "56.33", 2, False),
        ("text", "Ada Baker", "Ada Baker", None, True),
        ("text", "  'ada baker'. ", "Ada Baker", None, True),
        ("text", "Ada", "Ada Baker", None, False),
        ("text", "", "Ada Baker", None, False),
        ("list", "Bo Xu, Ada Baker", ["Ada Baker", "Bo Xu"], None, True),
        ("list", "Ada Baker; Bo Xu", ["Ada Baker", "Bo Xu"], None, True),
        ("list", "Ada Baker, and Bo Xu", ["Ada Baker", "Bo Xu"], None, True),
        ("list", "Ada Baker\nBo Xu\n", ["Ada Baker", "Bo Xu"], None, True),
        ("list", "Ada Baker", ["Ada Baker", "Bo Xu"], None, False),
        ("list", "Ada Baker, Bo Xu, Cy Day", ["Ada Baker", "Bo Xu"], None, False),
        ("list", "Ada Baker, Ada Baker", ["Ada Baker", "Bo Xu"], None, False),
    ],
)
def test_grading(kind: str, answer: str, gold: object, decimals: int | None, ok: bool) -> None:
    assert grade(kind, answer, gold, decimals) is ok


@pytest.mark.parametrize("env_id", ["ToolGym/Calc-v0", "ToolGym/Multi-v0", "ToolGym/SQL-v0"])
def test_a_huge_number_in_the_answer_is_wrong_with_one_line_of_log(
    env_id: str, caplog: pytest.LogCaptureFixture
) -> None:
    # Python refuses to convert integers of more than 4,300 digits; the grader used to log a
    # full traceback for each such answer.
    import gymnasium as gym

    from toolgym.core.actions import FinalAnswer

    env = gym.make(env_id)
    if env_id == "ToolGym/SQL-v0":
        task = next(t for t in env.unwrapped.task_set if t.metadata["kind"] == "number")
        env.reset(options={"task_id": task.id})
    else:
        env.reset(seed=0)
    with caplog.at_level("WARNING"):
        _, reward, terminated, _, info = env.step(HERMES.render(FinalAnswer("9" * 5000)))
    assert terminated and reward == 0 and info["success"] is False
    records = [r for r in caplog.records if r.levelname in ("WARNING", "ERROR", "CRITICAL")]
    assert len(records) == 1 and records[0].exc_info is None, records
    assert "\n" not in records[0].getMessage() and "cannot be read" in records[0].getMessage()
