#!/usr/bin/env bash
# Set up .venv and run the demo: the scripted oracle and the random agent on ToolGym/Search-v0.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/_venv.sh "dev"
toolgym list
toolgym run ToolGym/Search-v0 --agent oracle --split test
toolgym run ToolGym/Search-v0 --agent random --split test --episodes 200
