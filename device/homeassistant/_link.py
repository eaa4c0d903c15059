"""The connection to the MQTT broker, on a thread of its own: connect, keep alive, reconnect with jittered backoff.

Only this thread touches the paho client. The owner's callbacks run here too: `on_connected` (publish
everything), `on_message` (a command arrived) and `tick` (publish what changed) several times a second. A broker that
is down, a wrong password or a TLS failure is a state (`status()`), never an exception in the caller, and nothing
the camera or the music does ever waits for it.
"""

from __future__ import annotations

import contextlib
import logging
import random
import socket
import ssl
import threading
import time
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode

from device.config import Mqtt

log = logging.getLogger(__name__)
FIRST_RETRY_S, LAST_RETRY_S = 1.0, 60.0
CONNECT_TIMEOUT_S = 5.0
TRY_TIMEOUT_S = 4.0  # "Test connection" on the page waits at most this long for the broker
KEEPALIVE_S = 30
LOOP_S = 0.1  # how often the owner's tick runs while connected
MAX_QUEUED = 500  # messages paho may hold while a slow broker catches up; never unbounded


def jittered(delay: float) -> float:
    """Somewhere in [delay/2, delay]: boxes that lost the same broker do not all come back at the same moment."""
    return delay * random.uniform(0.5, 1.0)


def explain(exc: BaseException, where: str, waited: float = CONNECT_TIMEOUT_S) -> str:
    """What went wrong while connecting, and the fix, for the page and the log (never the password). In the words
    of Settings → Home Assistant, which a config file's reader understands too."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        return (
            f"TLS failed at {where}: the broker's certificate was not accepted ({exc.verify_message}); "
            "give the CA file that signed it"
        )
    if isinstance(exc, ssl.SSLError):
        return f"TLS failed at {where} ({exc.reason or exc}): is this the broker's TLS port, and should TLS be on?"
    if isinstance(exc, ConnectionRefusedError):
        return f"cannot reach the MQTT broker at {where}: connection refused; is it running, and is the port right?"
    if isinstance(exc, socket.gaierror):
        return f"cannot find the MQTT broker {where} ({exc.strerror}); check the broker's name"
    if isinstance(exc, TimeoutError):
        return f"no answer from the MQTT broker at {where} within {waited:.0f} s; check the broker's name and port"
    if isinstance(exc, OSError):
        return f"cannot connect to the MQTT broker at {where}: {exc.strerror or exc}"
    return f"cannot connect to the MQTT broker at {where}: {type(exc).__name__}: {exc}"


def refusal(reason: Any, where: str) -> str:
    text = str(reason)
    if getattr(reason, "value", None) in (4, 5, 134, 135) or "password" in text.lower() or "authori" in text.lower():
        return (
            f"the MQTT broker at {where} refused the user name or password ({text}); check the user name and password"
        )
    return f"the MQTT broker at {where} refused the connection ({text})"


def make_client(s: Mqtt, client_id: str) -> mqtt.Client:
    """A paho client for these settings: user, password and TLS set, nothing connected yet."""
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv311)
    client.connect_timeout = CONNECT_TIMEOUT_S
    client.max_queued_messages_set(MAX_QUEUED)
    if s.username:
        client.username_pw_set(s.username, s.password.get_secret_value() or None)
    if s.tls:
        client.tls_set_context(ssl.create_default_context(cafile=s.ca_file or None))
    return client


def try_settings(s: Mqtt, client_id: str, timeout: float = TRY_TIMEOUT_S) -> tuple[bool, str]:
    """Settings → Home Assistant's "Test connection": one connection with these settings, beside the link (its
    own client id, so the live connection is not pushed off), closed at once. (accepted, what happened); never
    raises, and never takes longer than about `timeout` once the name is found."""
    where = f"{s.host}:{s.port}"
    answer: list[Any] = []
    try:
        client = make_client(s, client_id)
        client.connect_timeout = timeout
        client.on_connect = lambda _c, _u, _f, reason, _p: answer.append(reason)
        client.connect(s.host, s.port, keepalive=KEEPALIVE_S)
    except Exception as exc:  # OSError, ssl.SSLError, ValueError: said, never raised
        return False, explain(exc, where, timeout)
    deadline = time.monotonic() + timeout
    try:
        while not answer and time.monotonic() < deadline:
            if client.loop(timeout=LOOP_S) != MQTTErrorCode.MQTT_ERR_SUCCESS:
                break
    finally:
        with contextlib.suppress(Exception):
            client.disconnect()
    if not answer:
        if time.monotonic() >= deadline:
            return False, f"no answer from the MQTT broker at {where} within {timeout:.0f} s: is this an MQTT port?"
        return False, f"the MQTT broker at {where} closed the connection before accepting it"
    if answer[0].is_failure:
        return False, refusal(answer[0], where)
    return True, f"the MQTT broker at {where} accepted these settings"


class Link:
    def __init__(
        self,
        on_connected: Callable[[Link], None],
        on_message: Callable[[Link, mqtt.MQTTMessage], None],
        tick: Callable[[Link], None],
        on_status: Callable[[dict[str, Any]], None],
    ) -> None:
        self._on_connected, self._on_message, self._tick, self._on_status = on_connected, on_message, tick, on_status
        self._settings: Mqtt | None = None
        self._will: tuple[str, str] | None = None  # availability topic, "offline"
        self._changed = threading.Event()  # new settings, or stop
        self._stop = False
        self._thread: threading.Thread | None = None
        self._client: mqtt.Client | None = None
        self._status: dict[str, Any] = {"state": "off", "broker": None, "error": None, "retry_at": None}
        self.connects = 0

    # -- the owner's side (any thread) -------------------------------------------------------------------------
    def start(self, settings: Mqtt, will: tuple[str, str], client_id: str) -> None:
        self._settings, self._will, self._client_id = settings, will, client_id
        self._thread = threading.Thread(target=self._run, name="mqtt", daemon=True)
        self._thread.start()

    def reconfigure(self, settings: Mqtt, will: tuple[str, str], client_id: str) -> None:
        self._settings, self._will, self._client_id = settings, will, client_id
        self._changed.set()

    def stop(self, timeout: float = 3.0) -> None:
        self._stop = True
        self._changed.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def status(self) -> dict[str, Any]:
        return dict(self._status)

    # -- the link thread only ----------------------------------------------------------------------------------
    def publish(self, topic: str, payload: str, retain: bool = True) -> None:
        """Text only: paho gets a str and sends its UTF-8. Dropped, not queued, while the broker is away."""
        if self._client is not None and self._client.is_connected():
            self._client.publish(topic, payload, qos=1 if retain else 0, retain=retain)

    def subscribe(self, topic: str) -> None:
        if self._client is not None:
            self._client.subscribe(topic, qos=0)

    def _set_status(self, **changes: Any) -> None:
        self._status = {**self._status, **changes}
        self._on_status(dict(self._status))

    def _run(self) -> None:
        delay = FIRST_RETRY_S
        while not self._stop:
            self._changed.clear()
            settings = self._settings
            if settings is None or not settings.enabled:
                self._set_status(state="off", broker=None, error=None, retry_at=None)
                self._changed.wait()
                continue
            if self._session(settings):
                delay = FIRST_RETRY_S  # it was connected: the next drop starts the backoff afresh
            if self._stop:
                break
            if self._changed.is_set():
                continue  # new settings: try them now
            wait = jittered(delay)
            self._set_status(state="retrying", retry_at=time.time() + wait)
            log.info("MQTT: next try in %.1f s", wait)
            self._changed.wait(wait)
            delay = min(delay * 2, LAST_RETRY_S)

    def _make_client(self, s: Mqtt) -> mqtt.Client:
        client = make_client(s, self._client_id)
        if self._will:
            client.will_set(self._will[0], self._will[1], qos=1, retain=True)
        client.on_connect = self._connected
        client.on_message = lambda _c, _u, msg: self._message(msg)
        return client

    def _session(self, s: Mqtt) -> bool:
        """One connection, from connect to its end; True if the broker accepted it."""
        where = f"{s.host}:{s.port}"
        self._set_status(state="connecting", broker=where, retry_at=None)
        client = self._client = self._make_client(s)
        self._accepted = False
        self._refused: str | None = None
        try:
            client.connect(s.host, s.port, keepalive=KEEPALIVE_S)
        except Exception as exc:  # OSError, ssl.SSLError, ValueError: all a state, never a crash
            self._problem(explain(exc, where))
            self._client = None
            return False
        try:
            while not self._stop and not self._changed.is_set():
                rc = client.loop(timeout=LOOP_S)
                if rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
                    break
                if self._accepted:
                    self._tick(self)
            if self._stop or self._changed.is_set():
                if self._accepted and self._will:
                    client.publish(self._will[0], self._will[1], qos=1, retain=True)  # a clean goodbye
                    client.loop(timeout=LOOP_S)
                client.disconnect()
            elif self._refused:
                self._problem(self._refused)
            elif self._accepted:
                self._problem(f"lost the connection to the MQTT broker at {where}; reconnecting")
            else:
                self._problem(f"the MQTT broker at {where} closed the connection before accepting it")
        except Exception as exc:
            log.exception("MQTT: the connection to %s failed", where)
            self._problem(explain(exc, where))
        finally:
            self._client = None
        return self._accepted

    def _connected(self, client: mqtt.Client, _userdata: Any, _flags: Any, reason: Any, _props: Any) -> None:
        where = self._status.get("broker")
        if reason.is_failure:
            self._refused = refusal(reason, str(where))
            return
        self._accepted = True
        self.connects += 1
        log.info("MQTT: connected to %s", where)
        self._set_status(state="connected", error=None, retry_at=None, since=time.time())
        self._on_connected(self)

    def _message(self, msg: mqtt.MQTTMessage) -> None:
        try:
            self._on_message(self, msg)
        except Exception:  # a command must never take the link down
            log.exception("MQTT: handling a message on %s failed", msg.topic)

    def _problem(self, text: str) -> None:
        if text != self._status.get("error"):
            log.warning("MQTT: %s", text)
        self._set_status(state="error", error=text)
