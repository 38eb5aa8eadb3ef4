"""The HTTP side of cancelling: a signed-in user cancels one of their own tasks."""

from django.http import HttpRequest, JsonResponse
from django.views.decorators.http import require_POST
from redis.exceptions import RedisError

from notifications.celery.cancel import cancel
from notifications.views import api_login_required, error


@api_login_required
@require_POST
def cancel_task(request: HttpRequest, task_id: str) -> JsonResponse:
    """202 once the cancel is under way; 404 alike for an unknown task and
    someone else's, so ids cannot be probed (CSRF applies)."""
    try:
        cancelled = cancel(task_id, by_user_id=request.user.pk)
    except RedisError:  # where the owners are kept
        return error("cancelling is unavailable; try again shortly", 503)
    if not cancelled:
        return error("no such task of yours", 404)
    return JsonResponse({"task_id": task_id, "cancelled": True}, status=202)
