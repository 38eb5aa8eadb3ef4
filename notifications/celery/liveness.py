"""Which worker runs each task, and whether that worker is still alive.

Each worker's main process beats every third of NOTIFICATIONS_WORKER_TIMEOUT
(a key in the app's Redis that lapses after the timeout), and each task with
a user notes its worker when it starts. A worker killed outright (its machine
gone) stops beating; the next beat of a live worker finds it and sends each
of its tasks' users a `stalled` message, and a tab that opens later is told
too (progress_state.stalled). Those bars wait for a worker until the task runs
again elsewhere (its message is
redelivered, see redelivery.py) and its next report brings the bar back.
A fan-out job's parts are not tracked: the job runs on many workers at once.
"""

import logging
import os
import threading
from typing import Any

from celery.signals import task_prerun, worker_init, worker_ready, worker_shutdown
from redis.exceptions import RedisError

from notifications import progress_state
from notifications.celery import fanout_state
from notifications.celery.reporting import user_of
from notifications.conf import app_settings
from notifications.publish import send_stalled

log = logging.getLogger(__name__)

_stopped = threading.Event()
# This worker as Redis knows it: its node name and its main process's id, so a
# worker restarted under the same name is a new one and its lost tasks are
# still found. Set before the pool forks, so its processes inherit it.
_me: str | None = None


@worker_init.connect
def name_this_worker(sender: Any, **_: Any) -> None:
    global _me
    _me = f"{sender.hostname}#{os.getpid()}"


def beat(worker: str) -> None:
    """Beat until the worker shuts down, and tell the users of tasks that a lost
    worker left that their bars wait for a worker; an unreachable Redis skips a beat."""
    while True:
        try:
            progress_state.alive(worker)
            for user_id, task_id in progress_state.claim_lost():
                send_stalled(user_id, task_id)
        except RedisError as exc:
            log.warning("worker heartbeat not recorded: %r", exc)
        except Exception:  # a thread that died here would make this worker look lost
            log.exception("worker heartbeat failed")
        if _stopped.wait(app_settings.WORKER_TIMEOUT / 3):
            return


@worker_ready.connect
def start_beating(sender: Any, **_: Any) -> None:
    # In the worker's main process, after the pool has forked its children.
    name = _me or sender.hostname
    threading.Thread(target=beat, args=(name,), name="notifications-heartbeat", daemon=True).start()


@worker_shutdown.connect
def stop_beating(sender: Any, **_: Any) -> None:
    _stopped.set()
    name = _me or getattr(sender, "hostname", None)
    if name:
        try:
            progress_state.gone(name)
        except RedisError as exc:  # it lapses with the timeout
            log.warning("worker %s not marked gone: %r", name, exc)


@task_prerun.connect
def note_worker(task_id: str, task: Any, args: Any, kwargs: Any, **_: Any) -> None:
    user_id = user_of(task, args, kwargs)
    if user_id is None or fanout_state.job_of(task.request) is not None:
        return
    try:
        progress_state.runs_on(user_id, task_id, _me or task.request.hostname)
    except RedisError as exc:
        log.warning("worker of task %s not recorded: %r", task_id, exc)
