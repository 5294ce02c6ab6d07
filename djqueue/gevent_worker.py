"""``python -m djqueue.gevent_worker [options]``: ``runworker --pool gevent``, patched first.

The documented entry point; the code lives in :mod:`djqueue.runtime.gevent_worker`.
"""

from djqueue.runtime.gevent_worker import command_line, main

__all__ = ["command_line", "main"]

if __name__ == "__main__":
    main()
