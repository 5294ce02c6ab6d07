"""The quick check of positional arguments agrees with ``inspect.Signature.bind``."""

from __future__ import annotations

import inspect
from typing import Any

import pytest

from djqueue.client.building import _positional_arity


def _plain(a: Any, b: Any, c: Any = 1) -> None: ...
def _star(*args: Any) -> None: ...
def _mixed(a: Any, *args: Any, k: Any = 1, **kw: Any) -> None: ...
def _keyword_needed(a: Any, /, b: Any, *, k: Any) -> None: ...
def _none() -> None: ...
def _defaults(a: Any = 1, b: Any = 2) -> None: ...
def _all(a: Any, b: Any = 2, *c: Any, d: Any, e: Any = 5, **f: Any) -> None: ...


@pytest.mark.parametrize(
    "function", [_plain, _star, _mixed, _keyword_needed, _none, _defaults, _all]
)
def test_a_count_the_quick_check_accepts_is_one_bind_accepts(function: Any) -> None:
    signature = inspect.signature(function)
    fewest, most = _positional_arity(signature)
    for count in range(7):
        try:
            signature.bind(*range(count))
            bound = True
        except TypeError:
            bound = False
        quick = fewest <= count <= most
        # The quick check never accepts what bind refuses; where it says no, bind decides.
        assert bound or not quick
        if (fewest, most) != (1, 0):
            assert quick == bound
