"""Client of the payment provider's HTTP API."""

import json
import urllib.error
import urllib.request

from django.conf import settings


class Timeout(Exception):
    """The provider did not answer in time, or asked us to come back later."""


class Declined(Exception):
    """The provider refused the charge."""


def _call(path, payload=None, timeout=None):
    data = None if payload is None else json.dumps(payload).encode()
    request = urllib.request.Request(
        f"{settings.PAYMENT_GATEWAY_URL}{path}",
        data=data,
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return json.load(response)
    except urllib.error.HTTPError as exc:
        if exc.code in (429, 503):
            raise Timeout(f"{path} answered {exc.code}") from exc
        if exc.code == 402:
            raise Declined(exc.read().decode()) from exc
        raise
    except TimeoutError as exc:
        raise Timeout(f"{path} did not answer") from exc


def charge(amount, reference):
    """Charge ``amount`` euros; returns the provider's payment id."""
    return _call("/charges", {"amount": str(amount), "reference": reference}, timeout=10)["id"]


def status():
    """The provider's own status ("ok" when all is well)."""
    return _call("/status")["status"]


def catalogue_page(number):
    """One page of the provider's list of payment methods."""
    return _call(f"/catalogue/{number}")["items"]
