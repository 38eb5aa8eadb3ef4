"""A publisher process: what a Celery worker does, at a controlled rate.

"ours" calls the real notify() (validation, the database write, group_send
after commit); "tutorial" calls async_to_sync(group_send) once per message with
no database, as the tutorials' publishers do. Each message carries a stamp in
its data: {"p": phase, "s": sequence number, "t": time.monotonic() at the call}.
"""

import random
import time
from datetime import UTC, datetime
from multiprocessing.connection import Connection

from bench.stack import setup_django

monotonic = time.monotonic
TITLE = "Your export is ready"
BODY = "3 files, 1.2 MB. They stay available for 7 days."


def tutorial_message(seq: int, stamp: dict) -> dict:
    """The same fields as our notification message, so both carry the same bytes."""
    return {
        "type": "notification",
        "id": seq,
        "level": "info",
        "title": TITLE,
        "body": BODY,
        "url": "",
        "data": {"bench": stamp},
        "task_id": None,
        "created_at": datetime.now(UTC).isoformat(),
    }


def crunch(until: float) -> None:
    """Compute (pure Python, never releasing the GIL by choice) until `until`."""
    total = 0
    while monotonic() < until:
        for i in range(500):
            total += i * i


class Publisher:
    def __init__(self) -> None:
        from bench.tutorial import send_notification
        from notifications.publish import notify, notify_all
        from notifications.sender import flush

        self.notify = notify
        self.notify_all = notify_all
        self.flush = flush
        self.tutorial_send = send_notification

    def one(self, kind: str, user_id: int, phase: int, seq: int) -> None:
        stamp = {"p": phase, "s": seq, "t": monotonic()}
        if kind == "ours":
            self.notify(user_id, TITLE, body=BODY, data={"bench": stamp})
        else:
            self.tutorial_send(user_id, tutorial_message(seq, stamp))

    def rate(
        self,
        kind: str,
        phase: int,
        rate: float,
        duration: float,
        user_ids: list[int],
        seq_start: int,
        seq_step: int,
        seed: int,
        busy: bool = False,
    ) -> dict:
        """Send for `duration` seconds at `rate` per second (0: as fast as possible).

        Open loop: call k is due at start + k / rate. A publisher that falls
        behind shows up as an achieved rate below the target, and it stops at
        1.5 x duration whatever it has sent. `busy` spends the time between
        calls computing in Python instead of sleeping, holding the GIL as a
        task crunching numbers between its progress reports does.
        """
        pick = random.Random(seed).choice
        sent: list[tuple[int, int]] = []
        calls: list[float] = []
        failures: list[str] = []
        start = monotonic()
        stop_at = start + duration
        hard_stop = start + 1.5 * duration
        k = 0
        while True:
            now = monotonic()
            if rate:
                if k >= rate * duration or now > hard_stop:
                    break
                due = start + k / rate
                if due > now and busy:
                    crunch(due)
                elif due > now:
                    time.sleep(due - now)
            elif now > stop_at:
                break
            seq = seq_start + k * seq_step
            user_id = pick(user_ids)
            began = monotonic()
            try:
                self.one(kind, user_id, phase, seq)
            except Exception as exc:  # counted as a failure, never hidden
                failures.append(repr(exc)[:200])
            else:
                sent.append((seq, user_id))
            calls.append(monotonic() - began)
            k += 1
        if kind == "ours":
            self.flush()  # notify() queues its push: the rate counts it sent
        elapsed = monotonic() - start
        return {
            "sent": sent,
            "failures": len(failures),
            "failure_samples": failures[:5],
            "seconds": elapsed,
            "calls": calls,
        }

    def broadcast(self, kind: str, phase: int, user_ids: list[int]) -> dict:
        """One notice to every user; ours through notify_all(), the tutorial by a loop."""
        stamp = {"p": phase, "s": 0, "t": monotonic()}
        began = monotonic()
        if kind == "ours":
            self.notify_all(TITLE, body=BODY, data={"bench": stamp})
            self.flush()
        else:
            message = tutorial_message(0, stamp)
            for user_id in user_ids:
                self.tutorial_send(user_id, message)
        return {"seconds": monotonic() - began, "users": len(user_ids)}


def main(pipe: Connection, env: dict[str, str]) -> None:
    """Entry point of a publisher process (multiprocessing, spawn)."""
    setup_django(env)
    publisher = Publisher()
    pipe.send({"ready": True})
    while True:
        command, *args = pipe.recv()
        if command == "stop":
            return
        try:
            reply = getattr(publisher, command)(*args)
        except Exception as exc:
            reply = {"error": repr(exc)}
        pipe.send(reply)
