#!/usr/bin/env bash
# Make Docker usable for the ToolGym sandbox on a Debian/Ubuntu machine (idempotent).
#
#   1. install docker.io and debootstrap with apt if missing (bubblewrap too, for the
#      process backend);
#   2. start dockerd in the background if no daemon answers, wait up to 60 s;
#   3. build the sandbox image (toolgym-sandbox:latest) if it is missing or stale: its label
#      toolgym.sandbox.recipe differs from the hash of this checkout's worker, Dockerfile and
#      build recipe (so CI never tests an image baked from an older worker).
#
# Needs root (or sudo). Used by CI with CI=true; safe to run repeatedly.
# Environment:
#   DOCKERD_FLAGS   extra dockerd flags (default: none; see docs/sandbox.md for the flags that
#                   help in restricted VMs: --iptables=false --storage-driver=vfs)
#   TOOLGYM_SANDBOX_IMAGE  image name (default toolgym-sandbox:latest)
#   PYTHON          interpreter with toolgym importable (default: python3 / python)
set -euo pipefail

IMAGE="${TOOLGYM_SANDBOX_IMAGE:-toolgym-sandbox:latest}"
LOG=/var/log/dockerd.log
ROOT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PYTHON="${PYTHON:-$(command -v python || command -v python3)}"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

log() { echo "[setup_docker] $*" >&2; }

# 1. packages --------------------------------------------------------------------------------
missing=()
command -v dockerd >/dev/null 2>&1 || missing+=(docker.io)
command -v debootstrap >/dev/null 2>&1 || [ -x /usr/sbin/debootstrap ] || missing+=(debootstrap)
command -v bwrap >/dev/null 2>&1 || missing+=(bubblewrap)
if [ "${#missing[@]}" -gt 0 ]; then
    log "installing ${missing[*]}"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# 2. daemon ----------------------------------------------------------------------------------
daemon_up() { docker info >/dev/null 2>&1; }

wait_daemon() {
    for _ in $(seq 1 60); do
        daemon_up && return 0
        sleep 1
    done
    return 1
}

PIDFILE=/run/toolgym-dockerd.pid
start_dockerd() {
    # shellcheck disable=SC2086 # flags are word-split on purpose
    $SUDO sh -c "nohup dockerd $* >>$LOG 2>&1 & echo \$! > $PIDFILE"
}

if daemon_up; then
    log "docker daemon already running"
else
    log "starting dockerd ${DOCKERD_FLAGS:-}"
    start_dockerd "${DOCKERD_FLAGS:-}"
    if ! wait_daemon; then
        # Restricted VMs: no iptables / no overlay support. Retry with the flags that work there.
        log "dockerd did not come up; retrying with --iptables=false --storage-driver=vfs"
        if [ -s "$PIDFILE" ]; then $SUDO kill "$(cat "$PIDFILE")" 2>/dev/null || true; fi
        sleep 2
        start_dockerd "${DOCKERD_FLAGS:-} --iptables=false --ip6tables=false --bridge=none --storage-driver=vfs"
        if ! wait_daemon; then
            log "dockerd failed to start; last log lines:"
            tail -n 30 "$LOG" >&2 || true
            exit 1
        fi
    fi
    log "docker daemon is up ($(docker version --format '{{.Server.Version}}'))"
fi

# 3. image -----------------------------------------------------------------------------------
cd "$ROOT_DIR"
EXPECTED="$(PYTHONPATH="$ROOT_DIR${PYTHONPATH:+:$PYTHONPATH}" "$PYTHON" -c \
    'from toolgym.sandbox.image import recipe_hash; print(recipe_hash())')"
if docker image inspect "$IMAGE" >/dev/null 2>&1; then
    ACTUAL="$(docker image inspect --format '{{ index .Config.Labels "toolgym.sandbox.recipe" }}' "$IMAGE")"
else
    ACTUAL="missing"
fi
if [ "$ACTUAL" = "$EXPECTED" ]; then
    log "image $IMAGE present and current (recipe $EXPECTED)"
else
    log "building $IMAGE (recipe $EXPECTED; image has: $ACTUAL); debootstrap from the apt mirror, about a minute"
    $SUDO env PYTHONPATH="$ROOT_DIR${PYTHONPATH:+:$PYTHONPATH}" "$PYTHON" -m toolgym.sandbox.cli build --name "$IMAGE"
fi
log "done"
