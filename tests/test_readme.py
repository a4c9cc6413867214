"""The README tells the truth: its error-code table, its snippets and its quick start."""

from __future__ import annotations

import contextlib
import importlib.util
import io
import re

import gymnasium as gym

from tests.conftest import REPO
from toolgym.core.errors import INVALID_ACTION_CODES, ErrorCode

README = (REPO / "README.md").read_text()


def _section(title: str) -> str:
    start = README.index(title)
    following = README.find("\n## ", start + len(title))
    return README[start: following if following != -1 else None]


def _python_blocks(text: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", text, flags=re.S)


def _generator() -> object:
    spec = importlib.util.spec_from_file_location("readme_error_codes", REPO / "scripts" / "readme_error_codes.py")
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


def test_error_code_table_is_generated_from_error_code() -> None:
    gen = _generator()
    table = gen.readme_table(README)  # type: ignore[attr-defined]
    assert table == gen.error_code_table(), "run: python scripts/readme_error_codes.py --write"  # type: ignore[attr-defined]
    rows = table.splitlines()[2:]
    assert [re.search(r"`(\w+)`", r).group(1) for r in rows] == [c.value for c in ErrorCode]  # type: ignore[union-attr]
    marked = {re.search(r"`(\w+)`", r).group(1) for r in rows if "| yes |" in r}  # type: ignore[union-attr]
    assert marked == {c.value for c in INVALID_ACTION_CODES}


def test_readme_counts_the_codes_right() -> None:
    counts = {int(n) for n in re.findall(r"(\d+) (?:error )?codes\b", README)}
    assert counts == {len(ErrorCode)}, counts
    assert "first twelve" not in README


def test_python_snippet_finds_something_and_solves_the_task() -> None:
    block = _python_blocks(_section("Use it from Python"))[0]
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(block, "README.md", "exec"), {})  # noqa: S102 - the README's own snippet
    printed = out.getvalue()
    assert "No results" not in printed and "[d02866] Nanovar" in printed
    assert printed.rstrip().splitlines()[-1] == "1.0 True True"


def test_add_your_own_environment_walkthrough_runs() -> None:
    blocks = _python_blocks(_section("## Add your own environment"))
    env_code, register_code = blocks[0], blocks[1]
    namespace: dict[str, object] = {}
    exec(compile(env_code, "README.md", "exec"), namespace)  # noqa: S102 - the README's own snippet
    if "ReadmeWalkthrough/Weather-v0" not in gym.registry:
        gym.register(id="ReadmeWalkthrough/Weather-v0", entry_point=namespace["WeatherEnv"])
    env = gym.make("ReadmeWalkthrough/Weather-v0")
    _, info = env.reset(seed=0)
    a, b = re.findall(r"warmer today, (\w+) or (\w+)\?", info["task_prompt"])[0]
    temps = {}
    for city in (a, b):
        obs, *_ = env.step(f'<tool_call>{{"name": "get_weather", "arguments": {{"city": "{city}"}}}}</tool_call>')
        temps[city] = int(re.search(rf"{city}: (-?\d+) °C", obs).group(1))  # type: ignore[union-attr]
    _, reward, terminated, _, step = env.step(f"<answer>{max(temps, key=temps.__getitem__)}</answer>")
    assert terminated and step["success"] and reward == 1.0
    env.reset(seed=0)
    _, _, _, _, step = env.step('<tool_call>{"name": "get_weather", "arguments": {"city": "Paris"}}</tool_call>')
    assert step["error"] == "tool_error" and "Unknown city 'Paris'" in step["error_message"]
    # Step 2's register() adds the id under the entry point's name, as toolgym's plugin loader does.
    from gymnasium.envs.registration import namespace as gym_namespace

    exec(compile(register_code, "README.md", "exec"), namespace)  # noqa: S102
    with gym_namespace("ReadmeExample"):
        namespace["register"]()  # type: ignore[operator]
    assert gym.make("ReadmeExample/Weather-v0").unwrapped.oracle_cls is not None


def test_quick_start_produces_what_the_readme_says() -> None:
    quickstart = (REPO / "scripts" / "quickstart.sh").read_text()
    assert 'source scripts/_venv.sh "dev,plot"' in quickstart  # matplotlib, so the PNG is written
    assert "--out runs/quickstart_leaderboard" in quickstart
    section = _section("## Quick start")
    assert "runs/quickstart_leaderboard/" in section and "`leaderboard.png`" in section
    assert "Namespace ToolGym not found" in section  # the clone-named-toolgym pitfall is explained


def test_setup_shows_pip_progress() -> None:
    venv = (REPO / "scripts" / "_venv.sh").read_text()
    assert "--quiet" not in venv and "-q " not in venv
    assert venv.count('echo "==> [$step/$steps] installing') == 3
