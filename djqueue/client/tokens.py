"""Signed per-job tokens for the job status view (docs/monitoring.md#job-status).

The sender hands its page the token of the job it started; the view answers a request
that carries it, and nobody else (unless the project opens the view on purpose). A
token is an HMAC of the job id under the project's ``SECRET_KEY`` (Django's signing,
so ``SECRET_KEY_FALLBACKS`` keeps older tokens valid while keys rotate).
"""

from __future__ import annotations

import uuid
from typing import Any

from django.core import signing

from djqueue.core import ids

# Keeps these signatures apart from every other use of the project's key.
SALT = "djqueue.job-status"


def status_token(result: Any) -> str:
    """The token that opens the job status view for one job.

    ``result`` is an AsyncResult (what ``delay()`` returns), a job id, or its text.
    """
    return _signer().signature(str(_job_id(result)))


def check(job_id: uuid.UUID, token: str) -> bool:
    """Whether ``token`` is the status token of ``job_id``."""
    try:
        _signer().unsign(f"{job_id}{_signer().sep}{token}")
    except signing.BadSignature:
        return False
    return True


def _signer() -> signing.Signer:
    return signing.Signer(salt=SALT)


def _job_id(result: Any) -> uuid.UUID:
    return ids.parse(getattr(result, "id", result))
