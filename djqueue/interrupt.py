"""Raising an exception inside another thread of this process.

Python checks for such an exception between bytecodes, so it interrupts Python code
(loops, calls) but not a blocking call in C (``time.sleep``, a socket read) until that
call returns. That is all threads and the solo pool can offer for soft time limits and
revocation; processes (prefork) and greenlets (gevent) can be stopped outright.
"""

from __future__ import annotations

import ctypes

_set_async_exc = ctypes.pythonapi.PyThreadState_SetAsyncExc
_set_async_exc.argtypes = (ctypes.c_ulong, ctypes.py_object)


def raise_in(thread_ident: int, error: type[BaseException]) -> bool:
    """Schedule ``error`` in thread ``thread_ident``; False if no such thread."""
    changed = _set_async_exc(ctypes.c_ulong(thread_ident), ctypes.py_object(error))
    if changed > 1:  # should not happen: undo, as the C API asks
        _set_async_exc(ctypes.c_ulong(thread_ident), ctypes.py_object())
        return False
    return bool(changed == 1)


def clear(thread_ident: int) -> None:
    """Drop an exception scheduled in ``thread_ident`` and not raised yet."""
    _set_async_exc(ctypes.c_ulong(thread_ident), ctypes.py_object())
