"""/healthz names the part that fails."""

import pytest

from config.redis_server import free_port
from tests.conftest import use_redis

pytestmark = pytest.mark.django_db


def test_healthy_when_database_and_redis_answer(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {
        "status": "ok",
        "failing": [],
        "checks": {"database": "ok", "redis": "ok"},
    }


def test_503_names_redis_when_it_is_unreachable(client, redis_server):
    use_redis(f"redis://127.0.0.1:{free_port()}/0")
    try:
        response = client.get("/healthz")
    finally:
        use_redis(redis_server.url)
    assert response.status_code == 503
    body = response.json()
    assert body["failing"] == ["redis"]
    assert body["checks"]["database"] == "ok"
    assert body["checks"]["redis"].startswith("failing: ")


def test_the_app_serves_health_under_its_own_prefix(client):
    response = client.get("/api/notifications/health/")
    assert (response.status_code, response.json()["status"]) == (200, "ok")
