"""Django's console email backend, made readable when several worker threads send at once."""

from __future__ import annotations

import threading
from typing import Any

from django.core.mail.backends import console


class ConsoleEmailBackend(console.EmailBackend):
    """Print emails to stdout, one whole email at a time across all threads.

    Django's backend locks per instance, and ``send_mail`` makes a new instance per call,
    so emails sent by concurrent tasks would interleave line by line.
    """

    _shared_lock = threading.RLock()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._lock = self._shared_lock
