"""A real Mosquitto broker for the tests (Debian's `mosquitto`), on a loopback port with a password file, and
optionally TLS with a CA the test makes. Plus a recording MQTT client that plays Home Assistant's part."""

from __future__ import annotations

import datetime as dt
import getpass
import ipaddress
import os
import shutil
import socket
import ssl
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from tests.conftest import free_port

USER, PASSWORD = "moodbox", "broker pass 1"
SBIN = "/usr/sbin:/usr/bin:/sbin:/bin"  # Debian puts mosquitto in /usr/sbin, not on every user's PATH


def tool(name: str) -> str:
    path = shutil.which(name) or shutil.which(name, path=SBIN)
    assert path, f"{name} missing: apt-get install mosquitto (./setup.sh test does)"
    return path


def make_ca(folder: Path) -> tuple[Path, Path, Path]:
    """A CA and a server certificate for 127.0.0.1 signed by it: (ca.pem, server.pem, server.key)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = dt.datetime.now(dt.UTC)
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Moodbox test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
        )  # keyCertSign, cRLSign
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    server = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    paths = folder / "ca.pem", folder / "server.pem", folder / "server.key"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(server.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return paths


class Broker:
    """`mosquitto -c` with its own config; kill() and start() again on the same port."""

    def __init__(self, folder: Path, tls: bool = False) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.folder, self.port, self.tls = folder, free_port(), tls
        passwd = folder / "passwd"
        subprocess.run(
            [tool("mosquitto_passwd"), "-b", "-c", str(passwd), USER, PASSWORD], check=True, capture_output=True
        )
        lines = [
            f"listener {self.port} 127.0.0.1",
            "allow_anonymous false",
            f"password_file {passwd}",
            "persistence false",
            f"log_dest file {folder / 'mosquitto.log'}",
            "log_type all",
        ]
        if os.geteuid() == 0:
            lines.append(f"user {getpass.getuser()}")  # mosquitto would drop to its own user, who cannot read here
        if tls:
            self.ca, cert, key = make_ca(folder)
            lines += [f"cafile {self.ca}", f"certfile {cert}", f"keyfile {key}"]
        self.conf = folder / "mosquitto.conf"
        self.conf.write_text("\n".join(lines) + "\n")
        passwd.chmod(0o600)
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 10) -> Broker:
        self.proc = subprocess.Popen(
            [tool("mosquitto"), "-c", str(self.conf)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            assert self.proc.poll() is None, f"mosquitto exited: {self.proc.stderr.read().decode()}"
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return self
            except OSError:
                time.sleep(0.05)
        raise AssertionError(f"mosquitto did not listen on {self.port} within {timeout} s")

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)

    def log(self) -> str:
        path = self.folder / "mosquitto.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def toml(self, **extra: object) -> str:
        """The daemon's [mqtt] section for this broker."""
        values: dict[str, object] = {
            "enabled": True,
            "host": "127.0.0.1",
            "port": self.port,
            "username": USER,
            "password": PASSWORD,
            "base_topic": "moodbox/test",
            "client_id": "moodbox-test",
            "room": "Test Room",
        }
        if self.tls:
            values.update(tls=True, ca_file=str(self.ca))
        values.update(extra)
        body = "\n".join(f"{k} = {_toml(v)}" for k, v in values.items())
        return f"[mqtt]\n{body}\n"


def _toml(v: object) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    return '"' + str(v).replace("\\", "\\\\").replace('"', '\\"') + '"'


@dataclass
class Message:
    at: float
    topic: str
    payload: bytes
    retain: bool


class Listener:
    """Home Assistant's side: subscribes (to # by default) and records every message with its arrival time."""

    def __init__(self, broker: Broker, topic: str = "#") -> None:
        self.messages: list[Message] = []
        self.lock = threading.Condition()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"test-ha-{free_port()}")
        self.client.username_pw_set(USER, PASSWORD)
        if broker.tls:
            self.client.tls_set_context(ssl.create_default_context(cafile=str(broker.ca)))
        self.client.on_connect = lambda c, *_: c.subscribe(topic, qos=1)
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", broker.port, keepalive=10)
        self.client.loop_start()

    def _on_message(self, _c, _u, msg) -> None:
        with self.lock:
            self.messages.append(Message(time.time(), msg.topic, bytes(msg.payload), bool(msg.retain)))
            self.lock.notify_all()

    def latest(self, topic: str) -> Message | None:
        with self.lock:
            return next((m for m in reversed(self.messages) if m.topic == topic), None)

    def wait_for(self, topic: str, payload: bytes | None = None, timeout: float = 10, after: float = 0) -> Message:
        """The first message on `topic` (with `payload`, if given) that arrived at or after `after`."""
        end = time.monotonic() + timeout
        with self.lock:
            while True:
                for m in self.messages:
                    if m.topic == topic and m.at >= after and (payload is None or m.payload == payload):
                        return m
                left = end - time.monotonic()
                if left <= 0:
                    seen = [(m.topic, m.payload[:60]) for m in self.messages if m.topic.startswith(topic[:20])][-8:]
                    raise AssertionError(f"no {payload!r} on {topic} within {timeout} s; last seen: {seen}")
                self.lock.wait(left)

    def send(self, topic: str, payload: bytes | str, retain: bool = False) -> None:
        self.client.publish(topic, payload, qos=1, retain=retain).wait_for_publish(5)

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()
