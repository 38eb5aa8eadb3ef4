"""The demo page and the endpoint that starts a task on behalf of the signed-in user."""

import json
import math
import uuid

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.http import require_POST
from kombu.exceptions import OperationalError
from redis.exceptions import RedisError

from notifications import limits, quota
from notifications.views import api_login_required, error
from tasks import tasks

STARTABLE = {
    "report": tasks.generate_report,
    "import": tasks.import_contacts,
    "quick": tasks.warm_cache,
    "flaky": tasks.sync_invoices,
    "long": tasks.long_job,
}
# Jobs of many tasks, started by a plain function (user_id) -> job id.
FANOUTS = {"statements": tasks.export_statements}
FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


class BadRequest(Exception):
    """A request body the view cannot act on; `status` is what the caller is told."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


@login_required
def home(request: HttpRequest) -> HttpResponse:
    return render(request, "tasks/home.html")


def fields_of(request: HttpRequest) -> dict:
    """The body as a dict: a JSON object or a form (the demo page sends a form).

    Any other content type is 415, so a client that sends something else
    learns it at once instead of having its body ignored.
    """
    if request.content_type in FORM_TYPES:
        return request.POST.dict()
    if request.content_type != "application/json":
        raise BadRequest("send a JSON object (application/json) or a form", status=415)
    try:
        fields = json.loads(request.body)
    # Deep nesting raises RecursionError, not ValueError.
    except (ValueError, RecursionError):
        raise BadRequest("the body is not valid JSON") from None
    if not isinstance(fields, dict):
        raise BadRequest("the body must be a JSON object")
    return fields


def task_named(fields: dict) -> str:
    """The startable task the body names; there is no default, so nothing starts unasked."""
    name = fields.get("task")
    known = sorted([*STARTABLE, *FANOUTS])
    if name is None:
        raise BadRequest(f"missing 'task'; one of {known}")
    if not isinstance(name, str):
        raise BadRequest("'task' must be a string")
    if name not in known:
        raise BadRequest(f"unknown task {limits.shown(name)}; one of {known}")
    return name


def start_named(name: str, user_id: int) -> str:
    """Start task or job `name` for `user_id`; returns the id its bar and Cancel use."""
    if name in FANOUTS:
        return FANOUTS[name](user_id)
    task_id = str(uuid.uuid4())
    # The user id travels as an argument: it is how the worker knows whom to tell.
    STARTABLE[name].apply_async(kwargs={"user_id": user_id}, task_id=task_id)
    return task_id


def starts_key(user_id: int) -> str:
    return f"tasks:starts:{int(user_id)}"


@api_login_required
@require_POST
def start(request: HttpRequest) -> JsonResponse:
    """Start a demo task for the caller; answers {"task_id": ...} (CSRF applies).

    The body is `{"task": name}` as JSON, or a form with a `task` field. Each
    user has a budget of TASKS_START_BURST starts, refilled at TASKS_START_RATE
    a second, over every process (a token bucket in the app's Redis): past it
    the answer is 429 with Retry-After, and nothing is enqueued.
    """
    try:
        name = task_named(fields_of(request))
    except BadRequest as exc:
        return error(str(exc), exc.status)
    rate = settings.TASKS_START_RATE
    try:
        allowed = quota.take(starts_key(request.user.pk), rate, settings.TASKS_START_BURST)
        if not allowed:
            response = error("too many tasks started; try again shortly", 429)
            response["Retry-After"] = str(math.ceil(1 / rate))
            return response
        task_id = start_named(name, request.user.pk)
    except (OperationalError, RedisError):  # the queue, or where a job's tally is kept
        return error("the task queue is unavailable; try again shortly", 503)
    return JsonResponse({"task_id": task_id, "task": name}, status=202)
