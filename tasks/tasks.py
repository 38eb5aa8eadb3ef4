"""Celery tasks started from the demo page. Thin: the work lives in work.py.

Each takes `user_id`, which is all it needs for lifecycle notifications
(see notifications/celery/signals.py); the parts of a fan-out job need not,
since their job knows its user (notifications/celery/fanout.py).
"""

import calendar
import time
from collections.abc import Iterable

from celery import shared_task

from notifications.celery import UserError, report_progress, start_fanout
from tasks import work

REGIONS = ["North", "South", "East", "West", "Central", "Overseas"]
BAD_CONTACTS = ["Ada Lovelace,ada@example.com", "Alan Turing,alan@example.com", "Grace,grace@"]


@shared_task(notify_title="Quarterly sales report")
def generate_report(user_id: int, step_seconds: float = 0.8) -> dict:
    report_progress(0, "Starting")
    summary = work.build_report(REGIONS, step_seconds, report_progress)
    best = max(summary, key=lambda region: summary[region]["total"])
    return {"message": f"{len(summary)} regions summarised; {best} sold most."}


@shared_task(notify_title="Contact import")
def import_contacts(user_id: int) -> str:
    report_progress(0, "Reading the file")
    try:
        contacts = list(work.parse_contacts(BAD_CONTACTS))
    except ValueError as exc:
        raise UserError(f"Nothing was imported. {exc}") from exc
    return f"Imported {len(contacts)} contacts."


@shared_task(
    bind=True,
    notify_title="Invoice sync",
    autoretry_for=(ConnectionError,),
    retry_kwargs={"max_retries": 3, "countdown": 0.5},
)
def sync_invoices(self, user_id: int, fail_times: int = 2) -> str:
    """Fails its first `fail_times` attempts, as a flaky upstream API would."""
    report_progress(0, f"Attempt {self.request.retries + 1}")
    if self.request.retries < fail_times:
        raise ConnectionError("the billing API timed out")
    return f"Invoices are in sync after {self.request.retries + 1} attempts."


@shared_task(notify_title="Cache warm-up")
def warm_cache(user_id: int) -> str:
    return "The dashboard cache is warm."


@shared_task(notify_title="Long job")
def long_job(user_id: int, seconds: float = 10.0, message: str = "", url: str = "") -> dict:
    """Works for `seconds`, reporting progress every second; returns `message` and `url`.

    On the demo page (10 s) it is the job to cancel. Tests also use it to try
    out how a long task survives its worker's death (and is not run twice
    while alive), and how a completion that does not fit the limits still
    reaches the user.
    """
    report_progress(0, "Starting")
    started = time.monotonic()
    while (elapsed := time.monotonic() - started) < seconds:
        time.sleep(min(1.0, seconds - elapsed))  # stands in for a slice of real work
        report_progress(100 * min(1.0, (time.monotonic() - started) / seconds), "Working")
    return {"message": message or f"Worked for {seconds:g} s.", "url": url}


STATEMENTS_TITLE = "Export 12 monthly statements"


@shared_task
def export_statement(month: int, fail: bool = False, step_seconds: float = 0.15) -> str:
    """One month's statement: one part of `export_statements`' job (no user_id:
    the job knows whom it is for)."""
    name = calendar.month_name[month]
    lines = work.build_statement(month, step_seconds, report_progress)
    if fail:
        raise UserError(f"The {name} statement could not be exported: its ledger is locked.")
    return f"{name}: {lines} lines."


def export_statements(user_id: int, failing: Iterable[int] = ()) -> str:
    """Start the demo's fan-out job: twelve statements, one bar, one notice; returns
    its job id. `failing` names months whose part fails (for tests)."""
    failing = set(failing)
    parts = [export_statement.s(month, fail=month in failing) for month in range(1, 13)]
    return start_fanout(user_id, STATEMENTS_TITLE, parts)
