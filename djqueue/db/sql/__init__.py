"""Every SQL statement of djqueue, by concern, with why each lock or trick is there.

Only the data layer (:mod:`djqueue.db`) runs them. Table names are fixed by the models
(``djqueue_job``, ``djqueue_worker``, ``djqueue_limit``, ``djqueue_group``,
``djqueue_queue``, ``djqueue_periodic*``, ``djqueue_jobminute``, ``djqueue_queueminute``,
``djqueue_seriesmark``); parameters use ``%s`` placeholders as Django
cursors expect. Each module names its statements; this package gives them all under one
name (``sql.CLAIM_ONE_QUEUE``):

- :mod:`.enqueue` -- inserting jobs, groups, unique-key look-ups
- :mod:`.claim` -- taking due jobs, within rate and concurrency limits
- :mod:`.finish` -- writing outcomes, starts and kills
- :mod:`.leases` -- renewing, handing back and rescuing held jobs
- :mod:`.operations` -- revoke, forget, prune, the console's actions and reads
- :mod:`.workers` -- worker rows
- :mod:`.schedules` -- periodic tasks: leadership, runs, slots, notifications
- :mod:`.series` -- the time series: rollups, depth samples, pruning, reads
- :mod:`.waiting` -- what holds a waiting job back, for the console's job page
- :mod:`.parts` -- pieces shared by several statements
"""

from djqueue.db.sql.claim import *  # noqa: F403
from djqueue.db.sql.enqueue import *  # noqa: F403
from djqueue.db.sql.finish import *  # noqa: F403
from djqueue.db.sql.leases import *  # noqa: F403
from djqueue.db.sql.operations import *  # noqa: F403
from djqueue.db.sql.parts import WAITING_ETA
from djqueue.db.sql.schedules import *  # noqa: F403
from djqueue.db.sql.series import *  # noqa: F403
from djqueue.db.sql.waiting import *  # noqa: F403
from djqueue.db.sql.workers import *  # noqa: F403

__all__ = ["WAITING_ETA"]
