"""Training, conversion and evaluation of Moodbox's emotion classifier (not installed on the device)."""
