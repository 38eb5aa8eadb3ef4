"""`GET <prefix>/health/` (and wherever a project routes it): whether this process can
reach every part it needs.

Answers 200 when all is well and 503 naming the failing part, so a load
balancer takes the instance out and an operator sees why.
"""

from urllib.parse import urlsplit

import redis
from django.conf import settings
from django.db import connection
from django.http import HttpRequest, JsonResponse

from notifications.clients import app_redis, host_client, redis_client, sentinel_client


def _redis_clients() -> list[redis.Redis]:
    """The channel layer's Redis hosts, the app's own Redis and a Redis Celery broker;
    behind Sentinel, whichever primary the sentinels name now."""
    config = getattr(settings, "CHANNEL_LAYERS", {}).get("default", {}).get("CONFIG", {})
    clients = [host_client(host) for host in config.get("hosts", [])] + [app_redis()]
    if "celery" in settings.INSTALLED_APPS or "notifications.celery" in settings.INSTALLED_APPS:
        clients += _broker_clients()
    return list(dict.fromkeys(clients))  # the clients are cached: one ping per Redis


def _broker_clients() -> list[redis.Redis]:
    from celery import current_app

    broker = current_app.conf.broker_url or ""
    if broker.startswith(("redis://", "rediss://")):
        return [redis_client(broker)]
    if broker.startswith("sentinel://"):
        # kombu's form: sentinel://host:port;sentinel://host:port, master_name in the options.
        sentinels = tuple(
            (part.hostname, part.port or 26379) for part in map(urlsplit, broker.split(";"))
        )
        master = current_app.conf.broker_transport_options["master_name"]
        return [sentinel_client(sentinels, master)]
    return []


def check_database() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")


def check_redis() -> None:
    for client in _redis_clients():
        client.ping()


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
