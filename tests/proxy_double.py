"""A stand-in for what the functions meet in AWS between them and the database: RDS Proxy, which refuses
a startup packet carrying libpq's `options`, and a paused Aurora, which answers nothing until it has
resumed. It relays everything else to the test database."""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit, urlunsplit

from infra.local.tcp_proxy import relay

SSL_REQUEST = 80877103
# What RDS Proxy answers a startup packet with `options` in it.
REFUSAL = "Feature not supported: RDS Proxy currently doesn't support the option options."


def _error_response(message: str) -> bytes:
    fields = b"SFATAL\0C0A000\0M" + message.encode() + b"\0\0"
    return b"E" + struct.pack("!I", len(fields) + 4) + fields


def _read_exactly(connection: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = connection.recv(size - len(data))
        if not chunk:
            raise ConnectionError("closed during the startup packet")
        data += chunk
    return data


def _startup_parameters(packet: bytes) -> dict[str, str]:
    items = packet[8:].split(b"\0")
    return {items[i].decode(): items[i + 1].decode() for i in range(0, len(items) - 1, 2) if items[i]}


class ProxyDouble:
    """Listens on 127.0.0.1, refusing startup options as RDS Proxy does when `rds_proxy`; `asleep_until`
    (a monotonic time) closes every connection before it, as a paused cluster leaves it unanswered."""

    def __init__(self, database_url: str, *, rds_proxy: bool) -> None:
        self.database_url = database_url
        self.rds_proxy = rds_proxy
        self.asleep_until = 0.0
        self.refused = 0
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._sockets: set[socket.socket] = set()
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, name="proxy-double", daemon=True).start()

    def url(self) -> str:
        """The database URL as a function would have it: this double's host and port."""
        parts = urlsplit(self.database_url)
        login = parts.netloc.rsplit("@", 1)[0] if "@" in parts.netloc else ""
        return urlunsplit(parts._replace(netloc=f"{login}@127.0.0.1:{self.port}", query="sslmode=disable"))

    def _upstream(self) -> socket.socket:
        parts = urlsplit(self.database_url)
        socket_folder = parse_qs(parts.query).get("host")
        if socket_folder:
            upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            upstream.connect(str(Path(socket_folder[0]) / f".s.PGSQL.{parts.port or 5432}"))
            return upstream
        return socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 5432))

    def stop(self) -> None:
        self._listener.close()
        with self._lock:
            for held in self._sockets:
                with contextlib.suppress(OSError):
                    held.shutdown(socket.SHUT_RDWR)
                held.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        with self._lock:
            self._sockets.add(client)
        try:
            if time.monotonic() < self.asleep_until:
                client.close()
                return
            packet = _read_exactly(client, 4)
            packet += _read_exactly(client, struct.unpack("!I", packet)[0] - 4)
            if struct.unpack("!I", packet[4:8])[0] == SSL_REQUEST:
                client.sendall(b"N")
                packet = _read_exactly(client, 4)
                packet += _read_exactly(client, struct.unpack("!I", packet)[0] - 4)
            if self.rds_proxy and "options" in _startup_parameters(packet):
                self.refused += 1
                client.sendall(_error_response(REFUSAL))
                client.close()
                return
            upstream = self._upstream()
            with self._lock:
                self._sockets.add(upstream)
            upstream.sendall(packet)
            threading.Thread(target=relay, args=(upstream, client), daemon=True).start()
            relay(client, upstream)
        except OSError:
            client.close()
