"""HTTP views of the notifications app."""

import hmac

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.views.decorators.http import require_GET

from notifications import metrics as metrics_module


@require_GET
def metrics(request: HttpRequest) -> HttpResponse:
    """Prometheus text format; with METRICS_TOKEN set, only for its bearer."""
    token = settings.METRICS_TOKEN
    if token:
        given = request.headers.get("Authorization", "").removeprefix("Bearer ")
        if not hmac.compare_digest(given.encode(), token.encode()):
            return HttpResponse("unauthorized\n", status=401, content_type="text/plain")
    try:
        body = metrics_module.render()
    except Exception as exc:  # Redis away: say so rather than serve partial figures
        return HttpResponse(
            f"metrics unavailable: {exc!r}\n", status=503, content_type="text/plain"
        )
    return HttpResponse(body, content_type="text/plain; version=0.0.4; charset=utf-8")
