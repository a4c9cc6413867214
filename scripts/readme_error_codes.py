"""Generate the README's error-code table from :class:`toolgym.core.errors.ErrorCode`.

Each row is a code, whether it is an *invalid action* (in ``INVALID_ACTION_CODES``) and the
first sentence of the member's docstring in ``toolgym/core/errors.py``. The table sits between
``<!-- error-codes:begin -->`` and ``<!-- error-codes:end -->`` in README.md;
``tests/test_readme.py`` fails when it is out of date.

    python scripts/readme_error_codes.py           # print the table
    python scripts/readme_error_codes.py --write   # rewrite it in README.md
"""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
README = REPO / "README.md"
BEGIN, END = "<!-- error-codes:begin -->", "<!-- error-codes:end -->"


def member_docs() -> dict[str, str]:
    """``{code value: first sentence of its docstring}`` in declaration order."""
    tree = ast.parse((REPO / "toolgym" / "core" / "errors.py").read_text())
    cls = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "ErrorCode")
    docs: dict[str, str] = {}
    for node, after in zip(cls.body, cls.body[1:], strict=False):
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant) and isinstance(after, ast.Expr):
            text = " ".join(str(after.value.value).split()).replace("``", "`")
            first = re.split(r"(?<=[.)])\s+(?=[A-Z(])", text, maxsplit=1)[0]
            docs[str(node.value.value)] = first
    return docs


def error_code_table() -> str:
    """The markdown table, one row per :class:`ErrorCode` member in declaration order."""
    from toolgym.core.errors import INVALID_ACTION_CODES, ErrorCode

    docs = member_docs()
    invalid = {c.value for c in INVALID_ACTION_CODES}
    lines = ["| code | invalid action | meaning |", "|---|:---:|---|"]
    for code in ErrorCode:
        lines.append(f"| `{code.value}` | {'yes' if code.value in invalid else ''} | {docs[code.value]} |")
    return "\n".join(lines)


def readme_table(text: str) -> str:
    """The table currently between the markers of ``text``."""
    return text.split(BEGIN, 1)[1].split(END, 1)[0].strip()


def main(argv: list[str]) -> int:
    """Print the table, or with ``--write`` replace it in README.md."""
    table = error_code_table()
    if "--write" not in argv:
        print(table)
        return 0
    text = README.read_text()
    head, rest = text.split(BEGIN, 1)
    README.write_text(f"{head}{BEGIN}\n{table}\n{END}{rest.split(END, 1)[1]}")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(REPO))
    raise SystemExit(main(sys.argv[1:]))
