"""JSON encoding of arguments and results, with round-tripping of common Python types.

Values JSON has no type for (datetime, date, time, Decimal, UUID) are written as
``{"__djqueue__": "<type>", "v": "<text>"}`` and read back as the same type. Nothing is
ever pickled. As in any JSON, tuples come back as lists and non-string dict keys as
strings. The key ``__djqueue__`` is reserved in dicts passed through djqueue.

Two kinds are only ever read: ``request`` and ``exception``, which the finish statement
writes as the arguments of an errback that takes ``(request, exc, traceback)``.

Rows may also come from other programs (``djqueue_enqueue()`` in SQL): a malformed
tagged value makes :func:`loads` raise ``ValueError``, and model fields keep it as stored.
"""

from __future__ import annotations

import dataclasses
import datetime
import decimal
import json
import re
import uuid
from collections.abc import Callable
from typing import Any

TAG = "__djqueue__"
# An escaped NUL: "\u0000" not preceded by an odd number of backslashes.
_NUL = re.compile(r"(?<!\\)(?:\\\\)*\\u0000")


def _tag(kind: str, text: str) -> dict[str, str]:
    return {TAG: kind, "v": text}


def _default(value: object) -> object:
    # datetime is a subclass of date: test it first.
    if isinstance(value, datetime.datetime):
        return _tag("datetime", value.isoformat())
    if isinstance(value, datetime.date):
        return _tag("date", value.isoformat())
    if isinstance(value, datetime.time):
        return _tag("time", value.isoformat())
    if isinstance(value, decimal.Decimal):
        return _tag("decimal", str(value))
    if isinstance(value, uuid.UUID):
        return _tag("uuid", str(value))
    raise TypeError(f"{type(value).__module__}.{type(value).__qualname__}")


def _request(text: str) -> object:
    """The request of a failed job, as the finish statement writes it for an errback
    that takes ``(request, exc, traceback)``: its known fields, nothing else."""
    # Imported here: the codec is read before Django is set up, the request is not.
    from djqueue.core import context

    data = loads(text)
    if not isinstance(data, dict):
        raise ValueError("a request must be an object")
    known = {item.name for item in dataclasses.fields(context.Request)}
    values = {key: value for key, value in data.items() if key in known}
    for key in ("id", "root_id", "parent_id", "group"):
        values[key] = str(values[key]) if values.get(key) else None
    values["args"] = tuple(values.get("args") or ())
    values["kwargs"] = dict(values.get("kwargs") or {})
    return context.Request(**values)


def _exception(text: str) -> object:
    """A failed job's error for an errback, rebuilt as results rebuild errors (only
    known classes are ever made: see ``exceptions.rebuild``)."""
    from djqueue.core import exceptions

    data = loads(text)
    if not isinstance(data, dict):
        raise ValueError("an error must be an object")
    return exceptions.rebuild(str(data.get("type", "")), str(data.get("message", "")))


_DECODERS: dict[str, Callable[[str], object]] = {
    "datetime": datetime.datetime.fromisoformat,
    "date": datetime.date.fromisoformat,
    "time": datetime.time.fromisoformat,
    "decimal": decimal.Decimal,
    "uuid": uuid.UUID,
    # Written only by the finish statement, for errbacks (see db/sql/parts.py).
    "request": _request,
    "exception": _exception,
}


def _object_hook(obj: dict[str, Any]) -> object:
    kind, text = obj.get(TAG), obj.get("v")
    if not isinstance(kind, str) or len(obj) != 2 or kind not in _DECODERS:
        return obj
    # A row written by another program may hold anything: every way a decoder can
    # refuse it (Decimal raises ArithmeticError, not ValueError) is one ValueError.
    try:
        if isinstance(text, str):
            return _DECODERS[kind](text)
    except (ValueError, ArithmeticError, TypeError):
        pass
    raise ValueError(f"the tagged value {obj!r:.200} is not a valid {kind}")


def _lenient_hook(obj: dict[str, Any]) -> object:
    try:
        return _object_hook(obj)
    except ValueError:
        return obj


_encoder = json.JSONEncoder(default=_default, allow_nan=False, separators=(",", ":"))
_decoder = json.JSONDecoder(object_hook=_object_hook)


def dumps(value: object) -> str:
    """Encode ``value``; raise ``TypeError`` for anything JSON (or jsonb) cannot carry."""
    try:
        text = _encoder.encode(value)
    except ValueError:  # NaN or infinity: not valid JSON, refused by jsonb
        raise TypeError("NaN and infinite floats have no JSON form") from None
    if "\\u0000" in text and _NUL.search(text):
        raise TypeError("PostgreSQL cannot store a NUL character (\\x00) in JSON")
    # Characters outside the BMP are escaped as surrogate pairs too: only then walk.
    if "\\ud" in text and _has_lone_surrogate(value):
        raise TypeError(
            "PostgreSQL cannot store a lone surrogate (such as '\\udc80', half of a "
            "UTF-16 pair, left by decoding bytes with errors='surrogateescape') in JSON; "
            "decode with errors='replace' or send the bytes as base64"
        )
    # A user dict with the reserved key would be read back as a tagged value: refuse it.
    # The walk runs only when the key is in the text, i.e. mostly for tagged values.
    if TAG in text and _has_reserved_key(value):
        raise TypeError(f"the dict key {TAG!r} is reserved by djqueue")
    return text


def _has_lone_surrogate(value: object) -> bool:
    if isinstance(value, str):
        return any("\ud800" <= char <= "\udfff" for char in value)
    if isinstance(value, dict):
        return any(
            _has_lone_surrogate(key) or _has_lone_surrogate(item) for key, item in value.items()
        )
    if isinstance(value, list | tuple):
        return any(_has_lone_surrogate(item) for item in value)
    return False


def _has_reserved_key(value: object) -> bool:
    if isinstance(value, dict):
        return TAG in value or any(_has_reserved_key(item) for item in value.values())
    if isinstance(value, list | tuple):
        return any(_has_reserved_key(item) for item in value)
    return False


def loads(text: str | None) -> Any:
    """Decode what :func:`dumps` wrote (``None`` stays ``None``)."""
    if text is None:
        return None
    try:
        return _decoder.decode(text)
    except RecursionError:
        raise ValueError("the JSON is nested too deeply to be decoded") from None


def has_undecoded(value: object) -> bool:
    """Whether a value read by a model field holds something kept as stored (see
    :class:`Decoder`): a dict with the reserved key, or :class:`Undecodable` text."""
    return isinstance(value, Undecodable) or _has_reserved_key(value)


def describe_unencodable(value: object) -> tuple[str, str] | None:
    """Where in ``value`` JSON fails and why: ``("['when'][0]", "has type set")``."""
    return _find(value, "")


def _find(value: object, path: str) -> tuple[str, str] | None:
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str | int | float | bool | type(None)):
                return path, f"has a dict key of type {_type_name(key)} (keys must be str)"
            if key == TAG:
                return path, f"has the key {TAG!r}, which djqueue reserves"
            found = _find(item, f"{path}[{key!r}]")
            if found:
                return found
        return None
    if isinstance(value, list | tuple):
        for index, item in enumerate(value):
            found = _find(item, f"{path}[{index}]")
            if found:
                return found
        return None
    try:
        dumps(value)
    except TypeError as exc:
        if isinstance(value, str | float):
            return path, f"cannot be stored: {exc}"
        return path, f"has type {_type_name(value)}"
    return None


def _type_name(value: object) -> str:
    cls = type(value)
    return (
        cls.__qualname__ if cls.__module__ == "builtins" else f"{cls.__module__}.{cls.__qualname__}"
    )


class Encoder(json.JSONEncoder):
    """JSON encoder for model fields that stores values as :func:`dumps` does."""

    def default(self, o: object) -> object:
        return _default(o)


class Undecodable(str):
    """JSON text a model field could not decode, kept as it is stored."""


class Decoder(json.JSONDecoder):
    """JSON decoder for model fields that reads values back as :func:`loads` does.

    What cannot be decoded is kept as stored, so that a row written by another program
    always loads: a malformed tagged value stays its dict, and JSON nested too deeply
    for Python stays its text, as :class:`Undecodable`.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs["object_hook"] = _lenient_hook
        super().__init__(*args, **kwargs)

    def decode(self, s: str, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().decode(s, *args, **kwargs)
        except RecursionError:
            return Undecodable(s)
