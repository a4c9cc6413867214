# Sourced by the other scripts: create .venv (once) and install ToolGym with the given extras.
# Re-installs only when pyproject.toml, setup.py or the extras change.
# Usage: source scripts/_venv.sh "dev,train"
set -euo pipefail
extras="${1:-dev}"
python_bin="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
    echo "==> creating .venv with $($python_bin --version)"
    "$python_bin" -m venv .venv
fi
# shellcheck disable=SC1091
. .venv/bin/activate
stamp=".venv/.toolgym-installed"
want="$(cat pyproject.toml setup.py | sha256sum | cut -c1-16) $extras"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    echo "==> installing toolgym[$extras] into .venv"
    export PIP_DISABLE_PIP_VERSION_CHECK=1
    case ",$extras," in
        # torch first, pinned to the CPU build: a bare torch requirement would pull CUDA wheels.
        *,train,*|*,sb3,*) pip install --quiet torch==2.13.0 ;;
    esac
    pip install --quiet -e ".[$extras]"
    case ",$extras," in
        # BFCL's data and API simulators, without the old numpy and heavy packages it pins.
        *,bfcl,*) pip install --quiet --no-deps "bfcl-eval==2026.3.23" ;;
    esac
    echo "$want" > "$stamp"
fi
