"""Search log entry 44: where the Search-v0 (one hop) start fails, step by step.

For the first N dev and N training tasks (easy), played at T = 1 with the `llm:` agent, counts
episodes whose first action is a `search` call, whose query is the question's entity (the one
the oracle searches for), that open a gold document, and that succeed. Prints one JSON line.

    python benchmarks/results/collapse/search/search_start/where_it_fails.py runs/search_sft_from_base_s0/model 64
"""

import json
import sys

import gymnasium as gym

import toolgym  # noqa: F401  (registers the envs)
from toolgym.agents import make_agent
from toolgym.core.formats import get_action_format

path, n = sys.argv[1], int(sys.argv[2])
fmt = get_action_format("hermes")
out = {}
for split in ("dev", "train"):
    env = gym.make("ToolGym/Search-v0", split=split, difficulty="easy")
    agent = make_agent(f"llm:{path}?temperature=1.0", env, seed=0)
    c = dict(episodes=0, first_action_is_search=0, query_is_entity=0, opened_gold=0, success=0)
    for ep in range(n):
        obs, info = env.reset(seed=ep)
        task = env.unwrapped.task
        agent.reset()
        c["episodes"] += 1
        opened_gold = False
        for turn in range(4):
            action = agent.act(obs, info)
            parsed = fmt.parse(action)
            name, args = getattr(parsed, "name", None), getattr(parsed, "arguments", None) or {}
            if turn == 0:
                c["first_action_is_search"] += name == "search"
                c["query_is_entity"] += str(args.get("query", "")) == task.metadata["start_entity"]
            opened_gold |= name == "open" and args.get("doc_id") in task.metadata["gold_doc_ids"]
            obs, reward, terminated, truncated, info = env.step(action)
            if terminated or truncated:
                c["success"] += reward > 0
                break
        c["opened_gold"] += opened_gold
    out[split] = c
print(json.dumps(out))
