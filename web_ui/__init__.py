"""Moodbox's local web page (Flask), served inside the daemon by waitress."""

from web_ui.app import create_app

__all__ = ["create_app"]
