"""The demo page and the endpoint that starts a task on behalf of the signed-in user."""

import uuid

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.http import require_POST
from kombu.exceptions import OperationalError

from notifications.views import api_login_required
from tasks import tasks

STARTABLE = {
    "report": tasks.generate_report,
    "import": tasks.import_contacts,
    "quick": tasks.warm_cache,
    "flaky": tasks.sync_invoices,
}


@login_required
def home(request: HttpRequest) -> HttpResponse:
    return render(request, "tasks/home.html")


@api_login_required
@require_POST
def start(request: HttpRequest) -> JsonResponse:
    """Start a demo task for the caller; answers {"task_id": ...} (CSRF applies)."""
    name = request.POST.get("task", "report")
    task = STARTABLE.get(name)
    if task is None:
        return JsonResponse(
            {"error": f"unknown task {name!r}; one of {sorted(STARTABLE)}"}, status=400
        )
    task_id = str(uuid.uuid4())
    try:
        # The user id travels as an argument: it is how the worker knows whom to tell.
        task.apply_async(kwargs={"user_id": request.user.pk}, task_id=task_id)
    except OperationalError:
        return JsonResponse(
            {"error": "the task queue is unavailable; try again shortly"}, status=503
        )
    return JsonResponse({"task_id": task_id, "task": name}, status=202)
