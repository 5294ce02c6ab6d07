"""A TCP proxy in front of PostgreSQL that can misbehave as a network does.

Modes, each switched on and off by the test:

- **freeze**: every connection stays open, nothing is forwarded either way; what was
  sent meanwhile is delivered when the freeze ends (a stalled link, TCP retransmitting).
- **cut**: every connection is dropped and new ones are refused until restored.
- **swallow replies**: bytes from the client reach the server, bytes from the server
  are dropped, so the server commits statements whose replies never arrive. When the
  swallowing ends, the connections that lost bytes are reset, as TCP would once its
  retransmissions give up: their protocol streams cannot be resumed. Swallowing may also
  start on each connection only at the first reply that carries rows (a PostgreSQL
  ``DataRow`` message): replies without rows pass until then, so that the reply lost is
  the one of a claim (or of an outcome write), not of whatever statement came first.

Server messages are forwarded whole, so the proxy reads PostgreSQL's framing; clients
must not ask for TLS or GSSAPI encryption through it (``PGSSLMODE=disable``,
``PGGSSENCMODE=disable``; see :data:`CLIENT_ENV`).
"""

from __future__ import annotations

import contextlib
import select
import socket
import struct
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

# How often a blocked pump or the acceptor looks at the proxy's mode again.
_TICK = 0.05
# What a client going through the proxy needs: a protocol stream the proxy can read.
CLIENT_ENV = {"PGSSLMODE": "disable", "PGGSSENCMODE": "disable"}
# A backend message: a type byte, then its length (counting itself) as four bytes.
_HEADER = 5
_DATA_ROW = b"D"


@dataclass(eq=False)
class _Link:
    """One proxied connection: the client's socket and ours to the server."""

    client: socket.socket
    server: socket.socket
    # Set once a server reply was dropped: the client's stream is broken for good.
    swallowed: bool = False
    closed: threading.Event = field(default_factory=threading.Event)
    # Server bytes read but not yet forwarded: the start of an incomplete message.
    partial: bytearray = field(default_factory=bytearray)

    def close(self, reset: bool = False) -> None:
        """Close both sockets; ``reset`` sends RST (a broken link) instead of FIN."""
        self.closed.set()
        for sock in (self.client, self.server):
            with contextlib.suppress(OSError):
                if reset:
                    # Linger 0: close() answers with RST, as a peer that gave up does.
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                else:
                    sock.shutdown(socket.SHUT_RDWR)
            sock.close()


class ChaosProxy:
    """Forwards ``127.0.0.1:<port>`` to ``upstream``; see the module for its modes."""

    def __init__(self, upstream: tuple[str, int] = ("127.0.0.1", 5432)) -> None:
        self.upstream = upstream
        self.port = free_port()
        self._lock = threading.Lock()
        self._links: set[_Link] = set()
        # Cleared while frozen: pumps wait on it before forwarding anything.
        self._flowing = threading.Event()
        self._flowing.set()
        self._swallowing = threading.Event()
        self._after_rows = False
        self._serving = threading.Event()
        self._acceptor: threading.Thread | None = None
        self.swallowed_bytes = 0

    # Modes ------------------------------------------------------------------------

    def open(self) -> None:
        """Start accepting connections (again, after a cut)."""
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        listener.settimeout(_TICK)  # close() does not wake accept(): poll the flag
        self._serving.set()
        self._acceptor = threading.Thread(target=self._accept, args=(listener,), daemon=True)
        self._acceptor.start()

    def cut(self) -> None:
        """Drop every connection and refuse new ones until :meth:`open`."""
        self._serving.clear()
        if self._acceptor is not None:
            self._acceptor.join()
            self._acceptor = None
        for link in self._take_links(lambda link: True):
            link.close()

    def freeze(self) -> None:
        """Keep every connection, forward nothing (new connections wait too)."""
        self._flowing.clear()

    def thaw(self) -> None:
        """Forward again, starting with what was held during the freeze."""
        self._flowing.set()

    def swallow_replies(self, after_rows: bool = False) -> None:
        """Forward client to server only; drop everything the server sends.

        With ``after_rows``, a connection's replies are dropped from the first one that
        carries rows on; those before it still arrive.
        """
        self._after_rows = after_rows
        self._swallowing.set()

    def stop_swallowing(self) -> int:
        """Forward both ways again; reset the links that lost bytes; return how many."""
        with self._lock:  # no pump drops a message between these two lines
            self._swallowing.clear()
            broken = [link for link in self._links if link.swallowed]
            self._links.difference_update(broken)
        for link in broken:
            link.close(reset=True)
        return len(broken)

    def close(self) -> None:
        """End everything (teardown)."""
        self.thaw()
        self._swallowing.clear()
        self.cut()

    # Inside -----------------------------------------------------------------------

    def _take_links(self, which: Callable[[_Link], bool]) -> list[_Link]:
        with self._lock:
            taken = [link for link in self._links if which(link)]
            self._links.difference_update(taken)
        return taken

    def _accept(self, listener: socket.socket) -> None:
        with listener:
            while self._serving.is_set():
                try:
                    client, _ = listener.accept()
                except TimeoutError:
                    continue
                except OSError:
                    return
                self._connect(client)

    def _connect(self, client: socket.socket) -> None:
        client.settimeout(None)
        try:
            server = socket.create_connection(self.upstream, timeout=5)
        except OSError:
            client.close()
            return
        server.settimeout(None)
        link = _Link(client, server)
        with self._lock:
            self._links.add(link)
        for source, target, replies in ((client, server, False), (server, client, True)):
            threading.Thread(
                target=self._pump, args=(link, source, target, replies), daemon=True
            ).start()

    def _pump(
        self, link: _Link, source: socket.socket, target: socket.socket, replies: bool
    ) -> None:
        """Copy bytes one way until either side closes, obeying the current mode."""
        try:
            while not link.closed.is_set():
                if not self._wait_flowing(link):
                    return
                readable, _, _ = select.select([source], [], [], _TICK)
                if not readable:
                    continue
                data = source.recv(65536)
                if not data:
                    break
                # Read during a freeze (the pump was already waiting): hold it until thaw.
                if not self._wait_flowing(link):
                    return
                if replies:
                    self._relay_replies(link, data, target)
                else:
                    target.sendall(data)
        except (OSError, ValueError):
            pass  # closed under us: by a cut, a reset or the other pump
        finally:
            if not link.closed.is_set():
                with self._lock:
                    self._links.discard(link)
                link.close()

    def _relay_replies(self, link: _Link, data: bytes, target: socket.socket) -> None:
        """Forward the server's complete messages, less those the swallowing drops."""
        link.partial += data
        kept = bytearray()
        # Under the lock: stop_swallowing() must see every link that lost a message.
        with self._lock:
            for message in _messages(link.partial):
                if self._swallowing.is_set() and (
                    link.swallowed or not self._after_rows or message[:1] == _DATA_ROW
                ):
                    # From the first dropped message on, the link's stream is broken.
                    link.swallowed = True
                    self.swallowed_bytes += len(message)
                else:
                    kept += message
        if kept:
            target.sendall(kept)

    def _wait_flowing(self, link: _Link) -> bool:
        """Block while frozen; False once the link is closed."""
        while not self._flowing.wait(_TICK):
            if link.closed.is_set():
                return False
        return not link.closed.is_set()


def _messages(buffer: bytearray) -> list[bytes]:
    """Take the complete backend messages off the front of ``buffer``."""
    found = []
    while len(buffer) >= _HEADER:
        size = 1 + int.from_bytes(buffer[1:_HEADER], "big")
        if len(buffer) < size:
            break
        found.append(bytes(buffer[:size]))
        del buffer[:size]
    return found


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
