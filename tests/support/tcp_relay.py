"""A TCP relay on loopback in front of a real server, which a test can cut and restore: a database outage
(every open connection reset, new ones refused) without stopping the server other tests share."""

from __future__ import annotations

import socket
import struct
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress


class TcpRelay:
    """Forwards 127.0.0.1:`port` to `target`; `cut()` resets every connection and stops listening,
    `restore()` listens again on the same port."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self._lock = threading.Lock()
        self._sockets: set[socket.socket] = set()
        self._listener = self._listen(0)
        self.port: int = self._listener.getsockname()[1]

    def _listen(self, port: int) -> socket.socket:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", port))
        listener.listen(64)
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()
        return listener

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:  # closed by cut()
                return
            try:
                upstream = socket.create_connection(self.target)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._sockets |= {client, upstream}
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(source, sink), daemon=True).start()

    def _pipe(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while chunk := source.recv(65536):
                sink.sendall(chunk)
        except OSError:
            pass
        finally:
            for end in (source, sink):
                _close(end)

    def cut(self) -> None:
        _close(self._listener)  # shutdown first: close alone leaves the thread in accept() listening
        with self._lock:
            ends, self._sockets = self._sockets, set()
        for end in ends:
            _reset(end)

    def restore(self) -> None:
        self._listener = self._listen(self.port)

    def close(self) -> None:
        self.cut()


def _reset(end: socket.socket) -> None:
    """Close with RST, as a database that went away does, rather than an orderly FIN."""
    try:
        end.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        end.shutdown(socket.SHUT_RD)  # wakes the thread reading it; sends nothing
    except OSError:
        pass
    end.close()


def _close(end: socket.socket) -> None:
    with suppress(OSError):
        end.shutdown(socket.SHUT_RDWR)
    end.close()


@contextmanager
def relay_to(host: str, port: int) -> Iterator[TcpRelay]:
    relay = TcpRelay((host, port))
    try:
        yield relay
    finally:
        relay.close()
