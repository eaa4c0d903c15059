#!/usr/bin/env bash
# The long CPU run (issue 13): 150 epochs of VGG16 from random weights with camera-like augmentation,
# at the lowest priority. Its checkpoints live outside the work tree, in $MOODBOX_TRAIN_DIR/long (default
# ~/.cache/moodbox/train/long); started again, it resumes at the batch after its last save (every 5 minutes).
# After every epoch its log also holds the weights' realval scores (--realval: to watch, never to pick).
#
#   nohup models/long_run.sh >> ~/.cache/moodbox/train/long.out 2>&1 &
#
# Check it in at the end of a working period:
#   .venv/bin/python -m models.checkin --checkpoint ~/.cache/moodbox/train/long/best.pt --ship
set -euo pipefail
cd "$(dirname "$0")/.."
out=${MOODBOX_TRAIN_DIR:-$HOME/.cache/moodbox/train}/long
mkdir -p "$out"
exec nice -n 19 .venv/bin/python -m models.train --epochs 150 --photometric --realval --out "$out" "$@"
