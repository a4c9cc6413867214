#!/usr/bin/env bash
# Set up .venv (ToolGym with the dev and plot extras) and run the demo: a leaderboard of the
# scripted oracle and the random agent on every registered env (20 test episodes each), written to
# runs/quickstart_leaderboard/ (leaderboard.csv, LEADERBOARD.md, leaderboard.png).
# Envs whose optional package is missing (the BFCL family needs bfcl-eval) are skipped with one
# line each.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/_venv.sh "dev,plot"
toolgym list
toolgym leaderboard --envs all --agents random,oracle --episodes 20 --split test --out runs/quickstart_leaderboard
