#!/usr/bin/env bash
# Set up .venv and run the demo: a quick leaderboard of the scripted oracle and the random agent on
# every registered env (20 test episodes each), written to runs/quickstart_leaderboard/.
# Envs whose optional package is missing (the BFCL family needs bfcl-eval) are skipped with a note.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/_venv.sh "dev"
toolgym list
toolgym leaderboard --envs all --agents random,oracle --episodes 20 --split test --out runs/quickstart_leaderboard
