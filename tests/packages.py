"""Debian packages that tests start as real components (PgBouncer, pg_auto_failover):
installed on first use when missing, where this user may (root, with apt-get), so that a
fresh CI machine runs those tests instead of skipping them. Elsewhere the tests skip and
say what to install."""

from __future__ import annotations

import functools
import os
import shutil
import subprocess

# apt-get may wait on a slow mirror; a test run must not hang on it.
_TIMEOUT = 600


@functools.cache
def install(package: str) -> bool:
    """Install Debian's ``package``; whether it was installed."""
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        return False
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    try:
        _update(env)
        done = subprocess.run(
            ["apt-get", "install", "-y", "-qq", package],
            env=env,
            capture_output=True,
            timeout=_TIMEOUT,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


@functools.cache
def _update(env: dict[str, str]) -> None:
    subprocess.run(["apt-get", "update", "-qq"], env=env, capture_output=True, timeout=_TIMEOUT)
