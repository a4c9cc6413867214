# Sourced by the other scripts: create .venv (once) and install ToolGym with the given extras.
# Re-installs only when pyproject.toml, setup.py or the extras change. pip's own output (what it
# collects, downloads and installs) is shown, so a long first install is never silent.
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
    export PIP_DISABLE_PIP_VERSION_CHECK=1
    steps=1
    case ",$extras," in *,train,*|*,sb3,*) steps=$((steps + 1)) ;; esac
    case ",$extras," in *,bfcl,*) steps=$((steps + 1)) ;; esac
    step=0
    started=$SECONDS
    case ",$extras," in
        # torch first, pinned to the CPU build: a bare torch requirement would pull CUDA wheels.
        *,train,*|*,sb3,*)
            step=$((step + 1))
            echo "==> [$step/$steps] installing torch==2.13.0 (CPU build, a 190 MB wheel)"
            pip install --progress-bar on torch==2.13.0 ;;
    esac
    step=$((step + 1))
    echo "==> [$step/$steps] installing toolgym[$extras] and its dependencies into .venv"
    pip install --progress-bar on -e ".[$extras]"
    case ",$extras," in
        # BFCL's data and API simulators, without the old numpy and heavy packages it pins.
        *,bfcl,*)
            step=$((step + 1))
            echo "==> [$step/$steps] installing bfcl-eval==2026.3.23 (no dependencies)"
            pip install --progress-bar on --no-deps "bfcl-eval==2026.3.23" ;;
    esac
    echo "==> installed in $((SECONDS - started)) s"
    echo "$want" > "$stamp"
fi
