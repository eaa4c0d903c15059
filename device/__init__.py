"""Moodbox: a camera watches the room, reads the mood on the faces it sees, and plays matching music."""

__version__ = "0.1.0"
