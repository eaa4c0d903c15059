"""The arm64 check: Moodbox's device code run as an arm64 process on Raspberry Pi OS's Debian releases.

    .venv/bin/python -m deploy.arm64.check [--release bookworm|trixie] [--report report.json] [--fresh]

`debian.py` builds each release's arm64 userland from Debian's own packages and fetches Trixie's qemu-aarch64,
`wheels.py` resolves, compares and installs the aarch64 wheels, and `check.py` runs the `moodbox` commands under
qemu and compares them with the same commands on this machine. Downloads are cached under
${XDG_CACHE_HOME:-~/.cache}/moodbox-arm64, so a second run only runs the checks.
"""
