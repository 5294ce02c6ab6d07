"""A private network for one test: a network namespace whose loopback link the test
can freeze (every packet dropped, both ways, as on a dead link) and thaw.

A process can only play a dead link with the kernel's help: a proxy that merely stops
forwarding still has its kernel acknowledge every byte and answer every keepalive
probe, so the client's TCP stack never learns of a problem. Here the packets vanish.

Only sockets made inside the namespace use its link: :meth:`PrivateNetwork.submit`
runs a function in a thread that entered it (threads that thread starts are inside
too). Making one needs the privilege to create network namespaces (root), and the
``ip`` and ``tc`` commands.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import ctypes
import os
import shutil
import subprocess
import threading
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")

CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)


class PrivateNetwork:
    """A network namespace of its own with its loopback link up."""

    def __init__(self) -> None:
        self._fd = _run_in_thread(_make_namespace)
        self.frozen = False

    def submit(self, fn: Callable[[], T]) -> concurrent.futures.Future[T]:
        """Start ``fn()`` in a new daemon thread inside the namespace."""
        future: concurrent.futures.Future[T] = concurrent.futures.Future()

        def run() -> None:
            try:
                _enter(self._fd)
                future.set_result(fn())
            except BaseException as exc:
                future.set_exception(exc)

        threading.Thread(target=run, daemon=True).start()
        return future

    def run(self, fn: Callable[[], T], timeout: float = 30) -> T:
        """``fn()`` inside the namespace; its value."""
        return self.submit(fn).result(timeout)

    def freeze(self) -> None:
        """Drop every packet on the link from now on: open connections fall silent."""
        self.run(lambda: _command("tc", "qdisc", "add", "dev", "lo", "root", "blackhole"))
        self.frozen = True

    def thaw(self) -> None:
        """Let packets through again."""
        if self.frozen:
            self.run(lambda: _command("tc", "qdisc", "del", "dev", "lo", "root"))
            self.frozen = False

    def close(self) -> None:
        """Thaw the link and let the namespace go once nothing uses it."""
        with contextlib.suppress(Exception):
            self.thaw()
        os.close(self._fd)


def unavailable() -> str | None:
    """Why a private network cannot be made here, or None if it can."""
    missing = [name for name in ("ip", "tc") if shutil.which(name) is None]
    if missing:
        return f"needs the {' and '.join(missing)} command(s) (iproute2)"
    try:
        network = PrivateNetwork()
    except OSError as exc:
        return f"cannot make a network namespace ({exc}); run as root"
    try:
        network.freeze()
    except (OSError, subprocess.CalledProcessError) as exc:
        return f"cannot drop packets with a blackhole qdisc ({exc})"
    finally:
        network.close()
    return None


def _make_namespace() -> int:
    if _libc.unshare(CLONE_NEWNET) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"unshare(CLONE_NEWNET): {os.strerror(errno)}")
    # Keeps the namespace alive after this thread is gone, and lets others enter it.
    fd = os.open(f"/proc/self/task/{threading.get_native_id()}/ns/net", os.O_RDONLY)
    _command("ip", "link", "set", "lo", "up")
    return fd


def _enter(fd: int) -> None:
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"setns(CLONE_NEWNET): {os.strerror(errno)}")


def _command(*args: str) -> None:
    # Started from a thread inside the namespace, the command runs inside it too.
    subprocess.run(args, check=True, capture_output=True, timeout=30)


def _run_in_thread(fn: Callable[[], Any]) -> Any:
    """``fn()`` in a thread of its own (its namespace changes stay with that thread)."""
    box: dict[str, Any] = {}

    def run() -> None:
        try:
            box["value"] = fn()
        except BaseException as exc:
            box["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(30)
    if "error" in box:
        raise box["error"]
    return box["value"]
