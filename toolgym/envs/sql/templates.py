"""Schemas and question templates shared by the SQL-v0 data generator and its scripted oracle.

SQL-v0 asks questions about generated SQLite databases, one schema family per difficulty:

* ``easy``: ``company``, a single table ``employees``;
* ``medium``: ``shop``, three tables (``customers``, ``products``, ``orders``) joined by keys;
* ``hard``: ``university``, five tables (``departments``, ``instructors``, ``courses``,
  ``students``, ``enrollments``), with questions that need grouping, ``HAVING`` and subqueries.

Each :class:`QuestionTemplate` has phrasings with ``{slot}`` parameters and the SQL that answers
it. The generator (``envs_data/sql/generate.py``) fills the slots from a database and runs the SQL
to get the ground truth; the oracle (:mod:`toolgym.envs.sql.oracle`) reads the slots back from the
question with regexes compiled from the same phrasings and sends the same SQL through the
``query`` tool. This module is deliberately **stdlib-only** (the generator loads it by file path).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cache

LEVELS: tuple[str, ...] = ("easy", "medium", "hard")
FAMILIES: dict[str, str] = {"easy": "company", "medium": "shop", "hard": "university"}
"""Schema family of each difficulty level."""

SCHEMAS: dict[str, tuple[str, ...]] = {
    "company": (
        "CREATE TABLE employees (\n"
        "  id INTEGER PRIMARY KEY,\n"
        "  name TEXT NOT NULL UNIQUE,\n"
        "  department TEXT NOT NULL,\n"
        "  city TEXT NOT NULL,\n"
        "  salary INTEGER NOT NULL,\n"
        "  hire_year INTEGER NOT NULL\n"
        ");",
    ),
    "shop": (
        "CREATE TABLE customers (\n"
        "  id INTEGER PRIMARY KEY,\n"
        "  name TEXT NOT NULL UNIQUE,\n"
        "  city TEXT NOT NULL\n"
        ");",
        "CREATE TABLE products (\n"
        "  id INTEGER PRIMARY KEY,\n"
        "  name TEXT NOT NULL UNIQUE,\n"
        "  category TEXT NOT NULL,\n"
        "  price REAL NOT NULL\n"
        ");",
        "CREATE TABLE orders (\n"
        "  id INTEGER PRIMARY KEY,\n"
        "  customer_id INTEGER NOT NULL REFERENCES customers(id),\n"
        "  product_id INTEGER NOT NULL REFERENCES products(id),\n"
        "  quantity INTEGER NOT NULL,\n"
        "  order_date TEXT NOT NULL\n"
        ");",
    ),
    "university": (
        "CREATE TABLE departments (\n"
        "  id INTEGER PRIMARY KEY,\n"
        "  name TEXT NOT NULL UNIQUE,\n"
        "  building TEXT NOT NULL\n"
        ");",
        "CREATE TABLE instructors (\n"
        "  id INTEGER PRIMARY KEY,\n"
        "  name TEXT NOT NULL UNIQUE,\n"
        "  department_id INTEGER NOT NULL REFERENCES departments(id),\n"
        "  salary INTEGER NOT NULL\n"
        ");",
        "CREATE TABLE courses (\n"
        "  id INTEGER PRIMARY KEY,\n"
        "  title TEXT NOT NULL UNIQUE,\n"
        "  department_id INTEGER NOT NULL REFERENCES departments(id),\n"
        "  instructor_id INTEGER NOT NULL REFERENCES instructors(id),\n"
        "  credits INTEGER NOT NULL\n"
        ");",
        "CREATE TABLE students (\n"
        "  id INTEGER PRIMARY KEY,\n"
        "  name TEXT NOT NULL UNIQUE,\n"
        "  major_id INTEGER NOT NULL REFERENCES departments(id),\n"
        "  enrollment_year INTEGER NOT NULL\n"
        ");",
        "CREATE TABLE enrollments (\n"
        "  student_id INTEGER NOT NULL REFERENCES students(id),\n"
        "  course_id INTEGER NOT NULL REFERENCES courses(id),\n"
        "  grade INTEGER NOT NULL,\n"
        "  PRIMARY KEY (student_id, course_id)\n"
        ");",
    ),
}
"""``CREATE TABLE`` statements of each schema family, in dependency order."""

ANSWER_INSTRUCTIONS: dict[str, str] = {
    "number": "Answer with a single number.",
    "text": "Answer with the name only.",
    "list": "Answer with a comma-separated list of names, in any order.",
}
"""Sentence appended to a question, by answer kind."""


@dataclass(frozen=True)
class QuestionTemplate:
    """A question type.

    Attributes:
        key: Stable identifier (``task.metadata["template"]``).
        level: Difficulty level (selects the schema family).
        phrasings: Question texts with ``{slot}`` parameters; unique across all templates.
        sql: The query answering it, with ``{slot}`` placeholders for SQL literals (see
            :meth:`render_sql`). It returns one column.
        kind: ``"number"``, ``"text"`` (one row) or ``"list"`` (any number of rows, order-free).
        decimals: For numbers rounded in the SQL, the number of decimals (else ``None``).
        numeric_slots: Slots that hold numbers (written unquoted in the SQL).
        tie_sql: For ``"text"`` answers chosen by ``ORDER BY ... LIMIT 1``: a query returning the
            ordering values, best first, so the generator can reject ties.
    """

    key: str
    level: str
    phrasings: tuple[str, ...]
    sql: str
    kind: str
    decimals: int | None = None
    numeric_slots: tuple[str, ...] = ()
    tie_sql: str | None = field(default=None)

    def render_sql(self, params: dict[str, str]) -> str:
        """The SQL with the parameters inlined as literals (strings quoted, numbers as is)."""
        out = self.sql
        for slot, value in params.items():
            literal = value if slot in self.numeric_slots else sql_literal(value)
            out = out.replace("{" + slot + "}", literal)
        return out

    def render_tie_sql(self, params: dict[str, str]) -> str | None:
        """:attr:`tie_sql` with the parameters inlined, or ``None``."""
        if self.tie_sql is None:
            return None
        return QuestionTemplate(self.key, self.level, (), self.tie_sql, self.kind,
                                numeric_slots=self.numeric_slots).render_sql(params)

    def prompt(self, index: int, params: dict[str, str]) -> str:
        """Phrasing number ``index`` with ``params`` filled in, plus the answer instruction."""
        text = self.phrasings[index]
        for slot, value in params.items():
            text = text.replace("{" + slot + "}", value)
        return f"{text} {ANSWER_INSTRUCTIONS[self.kind]}"


def sql_literal(value: str) -> str:
    """A SQL string literal (single quotes doubled)."""
    return "'" + value.replace("'", "''") + "'"


TEMPLATES: tuple[QuestionTemplate, ...] = (
    # -- easy: employees ------------------------------------------------------------------
    QuestionTemplate(
        "count_department", "easy",
        ("How many employees work in the {department} department?",
         "What is the number of employees in the {department} department?"),
        "SELECT COUNT(*) FROM employees WHERE department = {department}",
        "number",
    ),
    QuestionTemplate(
        "salary_of", "easy",
        ("What is the salary of {name}?", "How much does {name} earn?"),
        "SELECT salary FROM employees WHERE name = {name}",
        "number",
    ),
    QuestionTemplate(
        "top_paid_in_city", "easy",
        ("Who is the highest-paid employee based in {city}?",
         "Which employee in {city} has the highest salary?"),
        "SELECT name FROM employees WHERE city = {city} ORDER BY salary DESC LIMIT 1",
        "text",
        tie_sql="SELECT salary FROM employees WHERE city = {city} ORDER BY salary DESC LIMIT 2",
    ),
    QuestionTemplate(
        "hired_in_year", "easy",
        ("Which employees were hired in {year}?", "Who joined the company in {year}?"),
        "SELECT name FROM employees WHERE hire_year = {year}",
        "list",
        numeric_slots=("year",),
    ),
    QuestionTemplate(
        "average_salary_department", "easy",
        ("What is the average salary in the {department} department, rounded to 2 decimal places?",),
        "SELECT ROUND(AVG(salary), 2) FROM employees WHERE department = {department}",
        "number",
        decimals=2,
    ),
    QuestionTemplate(
        "count_city_above", "easy",
        ("How many employees based in {city} earn more than {amount}?",),
        "SELECT COUNT(*) FROM employees WHERE city = {city} AND salary > {amount}",
        "number",
        numeric_slots=("amount",),
    ),
    # -- medium: customers, products, orders ----------------------------------------------
    QuestionTemplate(
        "orders_of_customer", "medium",
        ("How many orders has {customer} placed?", "What is the number of orders placed by {customer}?"),
        "SELECT COUNT(*) FROM orders o JOIN customers c ON o.customer_id = c.id WHERE c.name = {customer}",
        "number",
    ),
    QuestionTemplate(
        "customers_of_product", "medium",
        ("Which customers have ordered {product}?", "Who has bought {product}?"),
        "SELECT DISTINCT c.name FROM orders o JOIN customers c ON o.customer_id = c.id "
        "JOIN products p ON o.product_id = p.id WHERE p.name = {product}",
        "list",
    ),
    QuestionTemplate(
        "quantity_product_city", "medium",
        ("What total quantity of {product} was ordered by customers from {city}?",),
        "SELECT SUM(o.quantity) FROM orders o JOIN customers c ON o.customer_id = c.id "
        "JOIN products p ON o.product_id = p.id WHERE p.name = {product} AND c.city = {city}",
        "number",
    ),
    QuestionTemplate(
        "total_spent", "medium",
        ("How much has {customer} spent in total, rounded to 2 decimal places?",
         "What is the total value of all orders by {customer}, rounded to 2 decimal places?"),
        "SELECT ROUND(SUM(o.quantity * p.price), 2) FROM orders o JOIN customers c ON o.customer_id = c.id "
        "JOIN products p ON o.product_id = p.id WHERE c.name = {customer}",
        "number",
        decimals=2,
    ),
    QuestionTemplate(
        "category_products_in_year", "medium",
        ("Which products in the {category} category were ordered in {year}?",),
        "SELECT DISTINCT p.name FROM orders o JOIN products p ON o.product_id = p.id "
        "WHERE p.category = {category} AND substr(o.order_date, 1, 4) = {year}",
        "list",
    ),
    QuestionTemplate(
        "best_customer_in_city", "medium",
        ("Which customer from {city} has ordered the largest total quantity?",),
        "SELECT c.name FROM orders o JOIN customers c ON o.customer_id = c.id WHERE c.city = {city} "
        "GROUP BY c.id ORDER BY SUM(o.quantity) DESC LIMIT 1",
        "text",
        tie_sql="SELECT SUM(o.quantity) AS q FROM orders o JOIN customers c ON o.customer_id = c.id "
        "WHERE c.city = {city} GROUP BY c.id ORDER BY q DESC LIMIT 2",
    ),
    # -- hard: departments, instructors, courses, students, enrollments -------------------
    QuestionTemplate(
        "best_course_in_department", "hard",
        ("Which course in the {department} department has the highest average grade?",),
        "SELECT c.title FROM courses c JOIN departments d ON c.department_id = d.id "
        "JOIN enrollments e ON e.course_id = c.id WHERE d.name = {department} "
        "GROUP BY c.id ORDER BY AVG(e.grade) DESC LIMIT 1",
        "text",
        tie_sql="SELECT AVG(e.grade) AS g FROM courses c JOIN departments d ON c.department_id = d.id "
        "JOIN enrollments e ON e.course_id = c.id WHERE d.name = {department} "
        "GROUP BY c.id ORDER BY g DESC LIMIT 2",
    ),
    QuestionTemplate(
        "average_grade_instructor", "hard",
        ("What is the average grade in the courses taught by {instructor}, rounded to 2 decimal places?",),
        "SELECT ROUND(AVG(e.grade), 2) FROM enrollments e JOIN courses c ON e.course_id = c.id "
        "JOIN instructors i ON c.instructor_id = i.id WHERE i.name = {instructor}",
        "number",
        decimals=2,
    ),
    QuestionTemplate(
        "students_with_many_courses", "hard",
        ("How many students are enrolled in at least {n} courses of the {department} department?",),
        "SELECT COUNT(*) FROM (SELECT e.student_id FROM enrollments e JOIN courses c ON e.course_id = c.id "
        "JOIN departments d ON c.department_id = d.id WHERE d.name = {department} "
        "GROUP BY e.student_id HAVING COUNT(*) >= {n})",
        "number",
        numeric_slots=("n",),
    ),
    QuestionTemplate(
        "majors_taught_by", "hard",
        ("Which students majoring in {department} take a course taught by {instructor}?",),
        "SELECT DISTINCT s.name FROM students s JOIN departments d ON s.major_id = d.id "
        "JOIN enrollments e ON e.student_id = s.id JOIN courses c ON e.course_id = c.id "
        "JOIN instructors i ON c.instructor_id = i.id WHERE d.name = {department} AND i.name = {instructor}",
        "list",
    ),
    QuestionTemplate(
        "credits_of_student", "hard",
        ("How many credits is {student} taking in total?",
         "What is the total number of credits of the courses {student} is enrolled in?"),
        "SELECT SUM(c.credits) FROM enrollments e JOIN courses c ON e.course_id = c.id "
        "JOIN students s ON e.student_id = s.id WHERE s.name = {student}",
        "number",
    ),
    QuestionTemplate(
        "above_average_in_course", "hard",
        ("Which students scored above the average grade of the course {course}?",),
        "SELECT s.name FROM enrollments e JOIN students s ON e.student_id = s.id "
        "JOIN courses c ON e.course_id = c.id WHERE c.title = {course} AND e.grade > "
        "(SELECT AVG(e2.grade) FROM enrollments e2 JOIN courses c2 ON e2.course_id = c2.id "
        "WHERE c2.title = {course})",
        "list",
    ),
)
"""Every question type; the generator draws tasks from these, the oracle parses with them."""

TEMPLATES_BY_KEY: dict[str, QuestionTemplate] = {t.key: t for t in TEMPLATES}
""":data:`TEMPLATES` keyed by :attr:`QuestionTemplate.key`."""

_SLOT_RE = re.compile(r"\{(\w+)\}")


@cache
def _regexes() -> tuple[tuple[re.Pattern[str], QuestionTemplate], ...]:
    compiled = []
    for template in TEMPLATES:
        suffix = " " + ANSWER_INSTRUCTIONS[template.kind]
        for phrasing in template.phrasings:
            parts, pos = [], 0
            for m in _SLOT_RE.finditer(phrasing):
                parts.append(re.escape(phrasing[pos : m.start()]))
                slot = m.group(1)
                value = r"[0-9]+" if slot in ("year", "amount", "n") else r"[A-Z0-9][^?,]*?"
                parts.append(f"(?P<{slot}>{value})")
                pos = m.end()
            parts.append(re.escape(phrasing[pos:] + suffix))
            compiled.append((re.compile("".join(parts)), template))
    return tuple(compiled)


def parse_question(question: str) -> list[tuple[QuestionTemplate, dict[str, str]]]:
    """Every ``(template, parameters)`` reading of ``question`` (exactly one for our tasks)."""
    text = " ".join(question.split())
    return [(t, m.groupdict()) for rx, t in _regexes() if (m := rx.fullmatch(text))]
