#!/usr/bin/env python3
"""Put Moodbox's firmware settings into config.txt between "# BEGIN MOODBOX" / "# END MOODBOX" markers.

    python3 deploy/firmware_block.py [/boot/firmware/config.txt] [firmware_config/config.txt]

Idempotent like Ansible's blockinfile: an existing block is replaced, the rest of the file is kept, and the file is
written (with a .bak copy) only when the block changed. Exit status: 0 unchanged, 10 changed (reboot needed).
Standard library only, so ./setup.sh can run it before any virtual environment exists.
"""

from __future__ import annotations

import re
import shutil
import sys
from pathlib import Path

BEGIN, END = "# BEGIN MOODBOX", "# END MOODBOX"
CHANGED = 10


def with_block(text: str, block: str) -> str:
    body = f"{BEGIN}\n{block.rstrip()}\n{END}\n"
    pattern = re.compile(rf"^{re.escape(BEGIN)}\n.*?^{re.escape(END)}\n?", re.S | re.M)
    if pattern.search(text):
        return pattern.sub(lambda _: body, text, count=1)
    if text and not text.endswith("\n"):
        text += "\n"
    return text + body


def apply(target: Path, block: str) -> bool:
    old = target.read_text() if target.exists() else ""
    new = with_block(old, block)
    if new == old:
        return False
    if target.exists():
        shutil.copy2(target, target.with_name(target.name + ".bak"))
    target.write_text(new)
    return True


def main(argv: list[str]) -> int:
    repo = Path(__file__).resolve().parents[1]
    target = Path(argv[1]) if len(argv) > 1 else Path("/boot/firmware/config.txt")
    source = Path(argv[2]) if len(argv) > 2 else repo / "firmware_config" / "config.txt"
    if not target.parent.is_dir():
        print(f"{target.parent} does not exist: is this Raspberry Pi OS Bookworm or newer?", file=sys.stderr)
        return 1
    changed = apply(target, source.read_text())
    print(f"{target}: {'updated (reboot to apply)' if changed else 'already up to date'}")
    return CHANGED if changed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
