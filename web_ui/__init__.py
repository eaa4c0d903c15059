"""Moodbox's local web page (Flask), served inside the daemon by web_ui/server.py."""

from web_ui.app import create_app

__all__ = ["create_app"]
