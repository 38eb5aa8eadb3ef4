"""One job made of many tasks: one progress bar, one final notice.

    job_id = start_fanout(user.pk, "Export 12 monthly statements",
                          [export_statement.s(month) for month in range(1, 13)])

The parts run as a Celery `group` whose id is the job id, so a part knows its
job from its own request. Each part's end (and any `report_progress()` inside
it) moves the job's bar to the mean of its parts. The part that ends last,
whether it succeeded or failed, sends the job's one notice: "<title> done",
or "<title> failed" saying how many parts failed and the first readable
reason (a `UserError`'s message). No chord is involved: a chord's callback
never runs when a part fails, and needs a result backend.

Parts send no notice of their own, even with a `user_id` argument
(signals.py skips them). Cancelling the job id revokes its parts (cancel.py).

A part counts once it ends in success or failure (task_postrun, in the pool
process). One that never does — ignored (`Ignore`), or lost with its process
where task_reject_on_worker_lost is off — leaves its job unfinished until the
tally lapses (fanout_state.JOB_TTL); with this project's settings a lost part
is queued again and runs.
"""

import logging
import uuid
from collections.abc import Iterable
from typing import Any

from celery import group, states
from celery.canvas import Signature
from celery.signals import task_postrun
from django.utils.translation import gettext
from redis.exceptions import RedisError

from notifications import flush, limits
from notifications.celery import fanout_state, owners
from notifications.celery.fanout_state import Tally
from notifications.celery.reporting import UserError, as_user_id, titled
from notifications.celery.signals import forget_progress, in_language_of, notify_once
from notifications.limits import BODY_MAX, TITLE_MAX, shorten

log = logging.getLogger(__name__)

OWNER_NAME = "notifications.celery.fanout"  # what owners.py records as the job's task


def start_fanout(user_id: int, title: str, signatures: Iterable[Signature]) -> str:
    """Run `signatures` in parallel as one job of `user_id`'s; returns the job id.

    The job id is what the bar, the final notice and the cancel endpoint use.
    Each signature must be a single task (not a group, chain or chord); its
    arguments are its own, and it needs no `user_id`. Raises ValueError for a
    user id, title or signature list that cannot make a job.
    """
    user = as_user_id(user_id)
    if user is None:
        raise ValueError(f"user_id {limits.shown(user_id)} names no user")
    if not isinstance(title, str) or not title.strip():
        raise ValueError("a job needs a title")
    title = shorten(title.strip(), TITLE_MAX - len(" failed"))
    signatures = list(signatures)
    if not signatures:
        raise ValueError("a job needs at least one task")
    if not all(isinstance(s, Signature) and s.subtask_type is None for s in signatures):
        raise ValueError("each part must be a single task's signature")
    parts = [signature.clone() for signature in signatures]
    job_id = fanout_state.PREFIX + str(uuid.uuid4())
    part_ids = [f"{job_id}.{number}" for number in range(1, len(parts) + 1)]
    for part, part_id in zip(parts, part_ids, strict=True):
        part.set(task_id=part_id, group_id=job_id)
    # Recorded before anything is published: the fastest part must find its job.
    fanout_state.create(job_id, user, title, part_ids)
    owners.record(job_id, user, OWNER_NAME)
    group(parts).apply_async(task_id=job_id)
    return job_id


def readable_reason(state: str, retval: Any) -> str:
    """A failed part's message fit to show (a UserError's), within the notice's body."""
    readable = state == states.FAILURE and isinstance(retval, UserError)
    return shorten(str(retval), BODY_MAX) if readable else ""


def final_fields(job: Tally) -> dict:
    if not job.failed:
        return {
            "title": titled(gettext("{title} done"), job.title),
            "body": "",
            "url": "",
            "level": "success",
        }
    reason = job.reason or gettext(
        "Something went wrong on our side. Reference: {task_id}."
    ).format(task_id=job.job_id)
    body = gettext("{failed} of {total} failed: {reason}").format(
        failed=job.failed, total=job.total, reason=reason
    )
    return {
        "title": titled(gettext("{title} failed"), job.title),
        "body": shorten(body, BODY_MAX),
        "url": "",
        "level": "error",
    }


def finish(job: Tally) -> None:
    """The job's one notice, its bar gone first; the dedupe key (the job id's, as
    a cancel's) keeps a part delivered twice from sending a second."""
    forget_progress(job.user_id, job.job_id)
    with in_language_of(job.user_id):
        fields = final_fields(job)
    notify_once(job.user_id, fields, job.job_id, job.title)
    fanout_state.delete(job.job_id)


@task_postrun.connect
def count_part(task_id: str, task: Any, retval: Any, state: str, **_: Any) -> None:
    """A part's end moves its job's bar; the last part's ends the job."""
    job_id = fanout_state.job_of(task.request)
    if job_id is None or state not in (states.SUCCESS, states.FAILURE):
        return  # a retry is not an end
    outcome = "ok" if state == states.SUCCESS else "failed"
    try:
        job = fanout_state.tally(job_id, task_id, 100, outcome, readable_reason(state, retval))
        if job is None:
            return  # cancelled, or not (any longer) a job this app knows
        fanout_state.show(job)
        if job.complete:
            finish(job)
    except RedisError as exc:  # the job's tally lapses with JOB_TTL
        log.error("part %s of job %s not counted: %r", task_id, job_id, exc)
    # This receiver connects after signals.send_pushes, which has flushed already.
    flush()
