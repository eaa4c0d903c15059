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

# ./setup.sh install: the same end state as Ansible's site.yml, for one box, without Ansible.
install_appliance() {
    [ "$(id -u)" = 0 ] || { echo "install needs root: sudo ./setup.sh install" >&2; exit 1; }
    local dest=/opt/moodbox
    say "packages"
    apt-get update -qq
    apt-get install -y -qq git python3-venv python3-pip python3-dev avahi-daemon libnss-mdns >/dev/null
    $is_pi && apt-get install -y -qq python3-picamera2 python3-systemd rpicam-apps-lite >/dev/null
    say "firmware settings (firmware_config/config.txt)"
    local reboot=false
    python3 deploy/firmware_block.py /boot/firmware/config.txt firmware_config/config.txt || { [ $? = 10 ] && reboot=true; }
    install -d -m 0755 /etc/systemd/system.conf.d
    cmp -s deploy/systemd/watchdog.conf /etc/systemd/system.conf.d/moodbox-watchdog.conf || {
        install -m 0644 deploy/systemd/watchdog.conf /etc/systemd/system.conf.d/moodbox-watchdog.conf; reboot=true; }
    say "user, code in $dest, virtual environment"
    id moodbox >/dev/null 2>&1 || useradd --system --home /var/lib/moodbox --no-create-home --shell /usr/sbin/nologin moodbox
    usermod -a -G video,audio moodbox
    install -d -m 0755 "$dest"
    git archive HEAD | tar -x -C "$dest"
    (cd "$dest" && PYTHON=/usr/bin/python3 MOODBOX_NO_PAIRING=1 ./setup.sh setup)
    say "config /etc/moodbox/moodbox.toml (kept if it exists)"
    install -d -m 0750 -g moodbox /etc/moodbox
    if [ ! -f /etc/moodbox/moodbox.toml ]; then
        printf '[camera]\ndemo_fallback = false\n\n[web]\nhost = "0.0.0.0"\nport = 8080\n\n[spotify]\nclient_id = ""\nspeaker = ""\n\n[state]\ndir = "/var/lib/moodbox"\n' \
            | install -m 0640 -g moodbox /dev/stdin /etc/moodbox/moodbox.toml
    fi
    sed "s/@PORT@/8080/; s/@HOST@/%h/" deploy/avahi-moodbox.service > /etc/avahi/services/moodbox.service
    say "systemd service"
    install -m 0644 deploy/systemd/moodbox.service /etc/systemd/system/moodbox.service
    systemctl daemon-reload
    systemctl enable --now avahi-daemon moodbox
    systemctl restart moodbox
    install -d -o moodbox -g moodbox -m 0700 /var/lib/moodbox
    sudo -u moodbox env STATE_DIRECTORY=/var/lib/moodbox "$dest/.venv/bin/moodbox" --config /etc/moodbox/moodbox.toml pairing-code
    echo "Page: http://$(hostname).local:8080"
    $reboot && echo "Firmware settings changed: reboot to apply them (sudo reboot)."
}

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
    if [ ! -x /usr/bin/chromium ] || ! command -v strace >/dev/null || ! command -v systemd-analyze >/dev/null \
        || [ ! -x /usr/sbin/mosquitto ]; then
        say "installing Chromium, strace, systemd tools and Mosquitto (the MQTT broker) for the tests (apt)"
        as_root apt-get update -qq
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium strace systemd mosquitto >/dev/null
    fi
    if ! command -v npm >/dev/null; then  # the browser tests fetch axe-core (not shipped) with `npm pack`
        say "installing npm for the accessibility audit's axe-core (apt)"
        as_root apt-get update -qq
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq npm >/dev/null
    fi
fi

if [ "$MODE" = install ]; then
    install_appliance
fi

if [ ! -f "$HERE/models/emotion_vgg16_int8.tflite" ]; then
    echo "warning: models/emotion_vgg16_int8.tflite is missing; restore it with git" >&2
fi

if { [ "$MODE" = setup ] || [ "$MODE" = run ]; } && [ -z "${MOODBOX_NO_PAIRING:-}" ]; then
    .venv/bin/moodbox pairing-code || true
fi

case "$MODE" in
    run)
        say "starting Moodbox: open http://127.0.0.1:${MOODBOX_PORT:-8080} (Ctrl-C stops it)"
        exec .venv/bin/moodbox run ${MOODBOX_PORT:+--port "$MOODBOX_PORT"} "$@";;
    test)
        say "ruff"
        .venv/bin/ruff check .
        .venv/bin/ruff format --check .
        say "pytest"
        exec .venv/bin/pytest "$@";;
    *)
        say "ready: .venv/bin/moodbox run   (tests: ./setup.sh test)";;
esac
