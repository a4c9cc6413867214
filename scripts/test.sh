#!/usr/bin/env bash
# Set up .venv with everything the tests need, then run the whole test suite.
# Extra arguments go to pytest, e.g. `bash scripts/test.sh -k search -x`.
# With CI=true (or TOOLGYM_SETUP_DOCKER=1) it also installs and starts Docker and builds the
# sandbox image (scripts/setup_docker.sh; needs root), since CI must run the Docker tests.
set -euo pipefail
cd "$(dirname "$0")/.."
# Every optional feature is tested: the extras of all of them.
source scripts/_venv.sh "dev,train,plot,sb3,bfcl,trl,verifiers,ray,accelerate,serve"
if [ "${CI:-}" = "true" ] || [ "${TOOLGYM_SETUP_DOCKER:-}" = "1" ]; then
    PYTHON=.venv/bin/python bash scripts/setup_docker.sh
fi
status=0
python -m pytest "$@" || status=$?
if [ "$status" -eq 5 ]; then
    echo "ERROR: pytest collected no tests" >&2
    exit 1
fi
exit "$status"
