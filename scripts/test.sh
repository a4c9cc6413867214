#!/usr/bin/env bash
# Set up .venv with everything the tests need, then run the whole test suite.
# Extra arguments go to pytest, e.g. `bash scripts/test.sh -k search -x`.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/_venv.sh "dev,train,plot,sb3"
status=0
python -m pytest "$@" || status=$?
if [ "$status" -eq 5 ]; then
    echo "ERROR: pytest collected no tests" >&2
    exit 1
fi
exit "$status"
