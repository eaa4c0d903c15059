"""Connecting Spotify from a phone: Authorization Code with PKCE and a loopback redirect, pasted back.

The phone opens the authorise link, signs in, and lands on http://127.0.0.1:<port>/callback?code=..., which on
a phone is an unreachable page; the user pastes that address into Moodbox's Settings page. The PKCE verifier and
state are kept in the state directory, so a restart between the two steps does not break the flow. The token
file is mode 0600. The daemon never reaches spotipy's interactive prompt.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import time
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import requests
from requests.adapters import HTTPAdapter
from spotipy.cache_handler import CacheFileHandler
from spotipy.exceptions import SpotifyOauthError
from spotipy.oauth2 import SpotifyPKCE
from urllib3.util.retry import Retry

log = logging.getLogger(__name__)
LIKES_SCOPE = "playlist-modify-private"  # the household's likes, saved to its own private playlists
SCOPES = (
    "user-read-playback-state user-modify-playback-state playlist-read-private "
    f"playlist-read-collaborative user-library-read user-top-read {LIKES_SCOPE}"
)
TIMEOUT = (3.05, 8)  # connect, read: no call waits forever
NOT_SET_UP = "Spotify is not set up yet: follow the steps under Settings → Spotify (or set [spotify] client_id)"
# Spotify's ?error= values (RFC 6749, 4.1.2.1) that a household can meet, in words; others are quoted.
SPOTIFY_SAID = {
    "access_denied": "Spotify did not give access: “Cancel” was chosen on Spotify's page, or this Spotify account "
    "is not on the app's list (User Management on developer.spotify.com)",
    "invalid_client": "Spotify does not know this app: check the Client ID in Settings → Spotify",
    "invalid_request": "Spotify refused the request: check that the app's Redirect URI is exactly the address "
    "shown in Settings → Spotify",
    "unauthorized_client": "Spotify refused this app: check the Client ID and the app's settings on "
    "developer.spotify.com",
    "server_error": "Spotify had a problem on its side",
    "temporarily_unavailable": "Spotify is busy just now",
}


class NotConnected(RuntimeError):
    """Spotify is not connected (or must be reconnected); the message says what to do on the page."""

    def __init__(self, state: str, message: str) -> None:
        super().__init__(message)
        self.state = state


def http_session() -> requests.Session:
    """Bounded retries with jitter for 5xx only. 429 is never slept on here: it surfaces as an error and the
    appliance backs off by itself (spotipy's default retry would honour a Retry-After of an hour in-call)."""
    retry = Retry(
        total=2,
        connect=1,
        read=1,
        status=2,
        backoff_factor=0.25,
        backoff_jitter=0.25,
        status_forcelist=(500, 502, 503, 504),
        allowed_methods=None,
        respect_retry_after_header=False,
        raise_on_status=False,
    )
    session = requests.Session()
    session.mount("https://", HTTPAdapter(max_retries=retry))
    session.mount("http://", HTTPAdapter(max_retries=retry))
    return session


class _HeadlessPKCE(SpotifyPKCE):
    """spotipy's PKCE manager with every interactive path closed."""

    def _get_auth_response(self, open_browser=None):
        raise NotConnected("not-connected", "Spotify is not connected: open Settings and connect it")

    def _get_user_input(self, prompt):
        raise NotConnected("not-connected", "Spotify is not connected: open Settings and connect it")


class _TokenFile(CacheFileHandler):
    def save_token_to_cache(self, token_info):
        super().save_token_to_cache(token_info)
        os.chmod(self.cache_path, 0o600)


class SpotifyAuth:
    def __init__(
        self,
        client_id: str,
        state_dir: Path,
        redirect_uri: str,
        accounts_url: str = "https://accounts.spotify.com",
        timeout: tuple[float, float] = TIMEOUT,
    ) -> None:
        self.client_id = client_id
        self.timeout = timeout
        self.redirect_uri = redirect_uri
        self.token_path = state_dir / "spotify_token.json"
        self._pending_path = state_dir / "spotify_pending.json"
        self.session = http_session()
        self.manager = _HeadlessPKCE(
            client_id=client_id or "unset",
            redirect_uri=redirect_uri,
            scope=SCOPES,
            cache_handler=_TokenFile(cache_path=str(self.token_path)),
            open_browser=False,
            requests_timeout=timeout,
            requests_session=self.session,
        )
        self.manager.OAUTH_AUTHORIZE_URL = f"{accounts_url}/authorize"
        self.manager.OAUTH_TOKEN_URL = f"{accounts_url}/api/token"
        self.needs_reconnect = False

    def set_client_id(self, client_id: str) -> None:
        """A new Spotify app (entered on the page): a token from another app is no use, so it is dropped."""
        if client_id == self.client_id:
            return
        if self.client_id:
            self.disconnect()
        self.client_id = client_id
        self.manager.client_id = client_id or "unset"
        log.info("Spotify app's Client ID %s", "set" if client_id else "removed")

    # -- state ---------------------------------------------------------------------------------------------
    @property
    def configured(self) -> bool:
        return bool(self.client_id)

    def cached_token(self) -> dict | None:
        try:
            return json.loads(self.token_path.read_text())
        except (OSError, ValueError):
            return None

    def granted(self, scope: str) -> bool:
        """Whether the saved connection was granted `scope` (one made before Moodbox asked for it was not)."""
        return scope in str((self.cached_token() or {}).get("scope") or "").split()

    @property
    def state(self) -> str:
        if not self.configured:
            return "not-configured"
        if self.needs_reconnect:
            return "reconnect"
        token = self.cached_token()
        return "connected" if token and token.get("refresh_token") else "not-connected"

    # -- the two steps of connecting -----------------------------------------------------------------------
    def authorize_url(self) -> str:
        if not self.configured:
            raise NotConnected("not-configured", NOT_SET_UP)
        self.manager.get_pkce_handshake_parameters()
        state = secrets.token_urlsafe(16)
        pending = {
            "verifier": self.manager.code_verifier,
            "challenge": self.manager.code_challenge,
            "state": state,
            "created": time.time(),
        }
        self._pending_path.write_text(json.dumps(pending))
        os.chmod(self._pending_path, 0o600)
        return self.manager.get_authorize_url(state=state)

    def finish(self, pasted_url: str) -> None:
        """Complete the flow with the address the phone landed on. Raises ValueError with a clear reason."""
        try:
            pending = json.loads(self._pending_path.read_text())
        except (OSError, ValueError):
            raise ValueError("no connection is in progress: press 'Connect Spotify' first") from None
        if time.time() - pending["created"] > 15 * 60:
            raise ValueError("that link expired (15 minutes): press 'Connect Spotify' again")
        query = parse_qs(urlparse(pasted_url.strip()).query)
        if "error" in query:
            said = query["error"][0]
            reason = SPOTIFY_SAID.get(said, f"Spotify did not connect (it said “{said[:60]}”)")
            raise ValueError(f"{reason}. Press “Connect Spotify” to try again")
        code, state = query.get("code", [None])[0], query.get("state", [None])[0]
        if not code:
            raise ValueError("that address has no ?code=...: paste the whole address from the page you landed on")
        if not state or (state != pending["state"] and pending["state"].startswith(state)):
            raise ValueError(
                "that address is cut off: its end is missing (it ends with “&state=…”). Copy the whole address "
                "again, from http to the end, and paste it here"
            )
        if state != pending["state"]:
            raise ValueError("that address belongs to an older connection attempt: press 'Connect Spotify' again")
        self.manager.code_verifier, self.manager.code_challenge = pending["verifier"], pending["challenge"]
        try:
            self.manager.get_access_token(code=code, check_cache=False)
        except SpotifyOauthError as exc:
            raise ValueError(f"Spotify refused the code ({exc.error or exc}): press 'Connect Spotify' again") from None
        except requests.RequestException as exc:
            raise ValueError(f"could not reach Spotify ({type(exc).__name__}): check the internet connection") from None
        self._pending_path.unlink(missing_ok=True)
        self.needs_reconnect = False
        log.info("Spotify connected")

    def access_token(self) -> str:
        """A valid access token, refreshed a minute before it expires. Raises NotConnected."""
        if not self.configured:
            raise NotConnected("not-configured", NOT_SET_UP)
        if self.needs_reconnect:
            raise NotConnected("reconnect", "Spotify access expired: reconnect Spotify in Settings")
        token = self.cached_token()
        if not token or not token.get("refresh_token"):
            raise NotConnected("not-connected", "Spotify is not connected: open Settings and connect it")
        try:
            if self.manager.is_token_expired(token):
                token = self.manager.refresh_access_token(token["refresh_token"])
        except SpotifyOauthError as exc:
            if exc.error == "invalid_grant":
                self.needs_reconnect = True
                log.error("Spotify refused the refresh token (invalid_grant): reconnect Spotify in Settings")
                raise NotConnected(
                    "reconnect", "Spotify access expired (tokens last 6 months): reconnect Spotify in Settings"
                ) from None
            raise
        return token["access_token"]

    def force_refresh(self) -> str:
        """After a 401: refresh now, whatever the expiry time says."""
        token = self.cached_token() or {}
        if token:
            token["expires_at"] = 0
            self.manager.cache_handler.save_token_to_cache(token)
        return self.access_token()

    def disconnect(self) -> None:
        self.token_path.unlink(missing_ok=True)
        self._pending_path.unlink(missing_ok=True)
        self.needs_reconnect = False
