"""`GET <prefix>/health/` (and wherever a project routes it): whether this process can
reach every part it needs.

Answers 200 when all is well and 503 naming the failing part, so a load
balancer takes the instance out and an operator sees why.
"""

from django.conf import settings
from django.db import connection
from django.http import HttpRequest, JsonResponse

from notifications.clients import redis_client
from notifications.conf import app_settings


def _redis_urls() -> list[str]:
    """The channel layer's Redis hosts, the app's own Redis and a Redis Celery broker."""
    config = getattr(settings, "CHANNEL_LAYERS", {}).get("default", {}).get("CONFIG", {})
    urls = [h["address"] if isinstance(h, dict) else h for h in config.get("hosts", [])]
    urls = [u for u in urls if isinstance(u, str)] + [app_settings.REDIS_URL]
    if "celery" in settings.INSTALLED_APPS or "notifications.celery" in settings.INSTALLED_APPS:
        from celery import current_app

        broker = current_app.conf.broker_url or ""
        if broker.startswith(("redis://", "rediss://")):
            urls.append(broker)
    return list(dict.fromkeys(urls))


def check_database() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")


def check_redis() -> None:
    for url in _redis_urls():
        redis_client(url).ping()


CHECKS = {"database": check_database, "redis": check_redis}


def healthz(request: HttpRequest) -> JsonResponse:
    results = {}
    for name, check in CHECKS.items():
        try:
            check()
            results[name] = "ok"
        except Exception as exc:
            results[name] = f"failing: {type(exc).__name__}"
    failing = [name for name, result in results.items() if result != "ok"]
    return JsonResponse(
        {"status": "failing" if failing else "ok", "failing": failing, "checks": results},
        status=503 if failing else 200,
    )
