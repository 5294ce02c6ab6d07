"""Running a workflow here and now (the ``EAGER`` setting), as Celery's eager mode does.

Each task runs here in order, its link callbacks after it and its errbacks when it fails
(placed as the planner places them). A chain step that failed stops the chain by raising
its error when the next step asks for its result; a chord's header does the same to its
body. A failed last step, or a group's failed member, is returned as a FAILURE result
unless EAGER_PROPAGATES is on.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from djqueue.client.planning import root, takes_request
from djqueue.core import conf, context, ids

if TYPE_CHECKING:
    from djqueue.client.canvas import Canvas, Signature, chain, group

logger = logging.getLogger("djqueue.canvas")


def run(node: Canvas) -> Any:
    """Run ``node`` here and now; return its result as sending it would."""
    result = _eager(node, (), [], [])
    if conf.flag("EAGER_PROPAGATES"):
        result.maybe_throw()
    return result


def _eager(
    node: Canvas, args: tuple[Any, ...], links: list[Signature], errbacks: list[Signature]
) -> Any:
    links = [*links, *node.options.get("link", [])]
    errbacks = [*errbacks, *node.options.get("link_error", [])]
    if node.subtask_type is None:
        return _eager_signature(node, args, links, errbacks)
    if node.subtask_type == "chain":
        return _eager_chain(node, args, links, errbacks)
    if node.subtask_type == "group":
        return _eager_group(node, args, links, errbacks)
    assert node.body is not None
    header = _eager(node.header, args, [], [])
    result = _eager(node.body, (header.get(disable_sync_subtasks=False),), links, errbacks)
    root(result).parent = header
    return result


def _eager_chain(
    node: chain, args: tuple[Any, ...], links: list[Signature], errbacks: list[Signature]
) -> Any:
    steps = node._steps()
    result: Any = None
    for index, step in enumerate(steps):
        # A step that failed raises here, as the next step asks for its result.
        given = args if result is None else (result.get(disable_sync_subtasks=False),)
        made = _eager(step, given, links if index == len(steps) - 1 else [], errbacks)
        if result is not None:
            root(made).parent = result
        result = made
    return result


def _eager_group(
    node: group, args: tuple[Any, ...], links: list[Signature], errbacks: list[Signature]
) -> Any:
    # Imported here: results read the job model, which Django defines only once its app
    # registry is ready, and a task may be declared before that.
    from djqueue.client.result_set import GroupResult

    members: list[Any] = []
    for index, task in enumerate(node.tasks):
        # A group's link goes to its first task, made immutable, as the planner does.
        fixed = [_immutable(link) for link in links] if index == 0 else []
        made = _eager(task, args, fixed, errbacks)
        # A group in a group is unrolled, as Celery does.
        members.extend(made.results if task.subtask_type == "group" else [made])
    return GroupResult(ids.new_id(), members)


def _immutable(sig: Signature) -> Signature:
    made = sig.clone()
    made.immutable = True
    return made


def _eager_signature(
    sig: Signature, args: tuple[Any, ...], links: list[Signature], errbacks: list[Signature]
) -> Any:
    made = sig.clone(args)
    outcome = made.task.apply(made.args, made.kwargs)
    if outcome.state == "SUCCESS":
        for link in links:
            _eager(link, (outcome.result,), [], [])
    elif outcome.state == "FAILURE":
        if conf.flag("EAGER_PROPAGATES"):
            # As Celery's: the error is raised at once; nothing after it runs.
            outcome.maybe_throw()
        for errback in errbacks:
            _call_errback(errback, outcome)
    return outcome


def _call_errback(errback: Signature, outcome: Any) -> None:
    """Call ``errback`` for the failed eager ``outcome`` as Celery does: with the request,
    the exception and the traceback here and now (its own error is logged), or, for a
    one-argument or bound errback, as a task given the failed job's id."""
    if not takes_request(errback):
        _eager(errback, (outcome.id,), [], [])
        return
    request = context.Request(
        id=str(ids.parse(outcome.id)),
        task=outcome.name,
        args=tuple(outcome.args or ()),
        kwargs=dict(outcome.kwargs or {}),
        is_eager=True,
    )
    try:
        errback.task.run(
            request, outcome.result, outcome.traceback, *errback.args, **errback.kwargs
        )
    except Exception:
        logger.exception("Errback %s of %s[%s] raised", errback.task.name, outcome.name, outcome.id)
