"""A TCP port forwarding to a Unix socket: the embedded PostgreSQL listens only on a socket, datasources
are reached over TCP like any customer database (the policy refuses socket paths), and containers
(sam local) reach no socket of the host."""

from __future__ import annotations

import contextlib
import socket
import threading
from pathlib import Path


def relay(source: socket.socket, target: socket.socket) -> None:
    """Copy what `source` sends to `target` until it closes, then close `source` and end `target`'s side."""
    try:
        while chunk := source.recv(65536):
            target.sendall(chunk)
    except OSError:
        pass
    finally:
        with contextlib.suppress(OSError):
            target.shutdown(socket.SHUT_WR)
        source.close()


class TcpToUnixProxy:
    """Accepts on `host`:`port` (0 picks a free one) and pipes each connection to `socket_path`."""

    def __init__(self, socket_path: Path, port: int = 0, host: str = "127.0.0.1") -> None:
        self.socket_path = socket_path
        self._listener = socket.create_server((host, port))
        self.port: int = self._listener.getsockname()[1]
        self._stopping = threading.Event()
        self._connections: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._accept, name="sample-db-proxy", daemon=True)

    def start(self) -> TcpToUnixProxy:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        self._listener.close()
        with self._lock:
            for connection in self._connections:
                with contextlib.suppress(OSError):
                    connection.shutdown(socket.SHUT_RDWR)
                connection.close()
        self._thread.join(timeout=5)

    def _accept(self) -> None:
        while not self._stopping.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return  # closed by stop()
            # Without it, Nagle's algorithm holds back the tail of each reply for the client's delayed
            # ACK: a request-and-reply protocol (a cursor's FETCH) waits tens of milliseconds a round trip.
            client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            try:
                upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                upstream.connect(str(self.socket_path))
            except OSError:
                client.close()
                continue
            with self._lock:
                self._connections |= {client, upstream}
            for source, target in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(source, target), daemon=True).start()

    def _pipe(self, source: socket.socket, target: socket.socket) -> None:
        relay(source, target)
        with self._lock:
            self._connections.discard(source)
