#!/usr/bin/env bash
# Moodbox setup. Idempotent: run it again at any time.
#
#   ./setup.sh            set up .venv with what the device needs (leaves .venv/bin/moodbox)
#   ./setup.sh run        set up, then run Moodbox (page on http://127.0.0.1:8080)
#   ./setup.sh test       set up with the test tools (Chromium, Playwright, Ansible, training extras), run the tests
#   ./setup.sh train      set up with the training extras (PyTorch, TensorFlow for the conversion)
#   ./setup.sh install    on a Raspberry Pi: also install the systemd service (needs sudo)
#
# On Raspberry Pi OS, picamera2 and systemd-python come from apt; the venv sees them through
# --system-site-packages, and on Bookworm numpy stays below 2 because apt's picamera2 is built against 1.24.
set -euo pipefail
cd "$(dirname "$0")"
HERE=$(pwd)
MODE=${1:-setup}
case "$MODE" in setup|run|test|train|install) ;; *) echo "usage: $0 [setup|run|test|train|install]" >&2; exit 64;; esac
shift || true
PY=${PYTHON:-python3}
say() { printf '\033[1m==> %s\033[0m\n' "$*"; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

is_pi=false
if grep -qi "raspberry pi" /proc/device-tree/model 2>/dev/null; then is_pi=true; fi
codename=$(. /etc/os-release 2>/dev/null && echo "${VERSION_CODENAME:-}")

constraints=$(mktemp)
trap 'rm -f "$constraints"' EXIT
venv_flags=()
if $is_pi; then
    say "Raspberry Pi OS ($codename): camera and systemd bindings from apt"
    as_root apt-get update -qq
    as_root apt-get install -y -qq python3-venv python3-picamera2 python3-systemd python3-dev >/dev/null
    venv_flags+=(--system-site-packages)
    if [ "$codename" = bookworm ]; then
        printf 'numpy<2\nopencv-python-headless<=4.11.0.86\n' >"$constraints"
    fi
fi

if [ ! -x .venv/bin/python ]; then
    say "creating .venv ${venv_flags[*]:-}"
    "$PY" -m venv "${venv_flags[@]}" .venv
fi
VPY=.venv/bin/python

extras=""
case "$MODE" in
    test) extras="[dev,train]";;
    train) extras="[train]";;
esac
# Skip pip when nothing it reads has changed since the last successful install.
stamp_want=$(cat pyproject.toml "$constraints" | sha256sum | cut -c1-16)"$extras"
if [ "$(cat .venv/.setup-stamp 2>/dev/null)" != "$stamp_want" ]; then
    say "installing Moodbox$extras into .venv"
    "$VPY" -m pip install -q --upgrade pip
    "$VPY" -m pip install -q -c "$constraints" -e ".$extras"
    echo "$stamp_want" >.venv/.setup-stamp
fi

if [ "$MODE" = test ]; then
    if [ ! -x /usr/bin/chromium ] || ! command -v strace >/dev/null || ! command -v systemd-analyze >/dev/null; then
        say "installing Chromium, strace and systemd tools for the tests (apt)"
        as_root apt-get update -qq
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium strace systemd >/dev/null
    fi
fi

if [ "$MODE" = install ]; then
    "$VPY" -m device.install --repo "$HERE"
fi

if [ ! -f "$HERE/models/emotion_vgg16_int8.tflite" ]; then
    echo "warning: models/emotion_vgg16_int8.tflite is missing; restore it with git" >&2
fi

case "$MODE" in
    run)
        say "starting Moodbox: open http://127.0.0.1:${MOODBOX_PORT:-8080} (Ctrl-C stops it)"
        exec .venv/bin/moodbox run ${MOODBOX_PORT:+--port "$MOODBOX_PORT"} "$@";;
    test)
        say "ruff"
        .venv/bin/ruff check .
        say "pytest"
        exec .venv/bin/pytest "$@";;
    *)
        say "ready: .venv/bin/moodbox run   (tests: ./setup.sh test)";;
esac
