"""Shared fixtures: a private Redis for the whole run, named users, the real stack."""

import pytest
from channels.layers import channel_layers
from django.conf import settings

from config.redis_server import RedisServer
from config.settings import redis_host
from tests import rabbitmq
from tests.sockets import open_socket
from tests.stack import running

# Threads of this process (the consumer's database thread, the sender loop) would
# keep persistent connections open past the run, and PostgreSQL refuses to drop
# a test database that is still in use.
settings.DATABASES["default"]["CONN_MAX_AGE"] = 0


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, django_db_blocker):
    """pytest-django's test database, with the connections other threads of this
    process still hold (an ORM call in a worker thread opens one that only that
    thread could close) ended before it is dropped: otherwise PostgreSQL refuses
    the drop and the database stays on the server."""
    yield
    from django.db import connection

    if connection.vendor != "postgresql":
        return
    with django_db_blocker.unblock(), connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )


def use_redis(url: str) -> None:
    """Point this process's channel layer and Celery app at `url`."""
    from worker import app

    settings.REDIS_URL = url
    settings.NOTIFICATIONS_REDIS_URL = url
    settings.CHANNEL_LAYERS = {
        "default": {
            **settings.CHANNEL_LAYERS["default"],
            "CONFIG": {**settings.CHANNEL_LAYERS["default"]["CONFIG"], "hosts": [redis_host(url)]},
        }
    }
    settings.CELERY_BROKER_URL = url
    channel_layers.backends.clear()
    app.conf.broker_url = url


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    """Keep each phase's report on the test, so a fixture can tell that it failed."""
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


@pytest.fixture(scope="session", autouse=True)
def fast_password_hashing() -> None:
    """Users made in-process need no slow hash (the real stack keeps the default)."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(scope="session", autouse=True)
def redis_server(tmp_path_factory):
    """A redis-server of our own: no test ever touches a Redis it did not start."""
    server = RedisServer(tmp_path_factory.mktemp("redis")).start()
    use_redis(server.url)
    yield server
    server.stop()


@pytest.fixture
def redis_client(redis_server):
    import redis

    client = redis.Redis.from_url(redis_server.url)
    yield client
    client.close()


@pytest.fixture(autouse=True)
def empty_redis(redis_server):
    """Each test leaves the private Redis empty, whether or not it asked for a
    client: a task's end mark or a budget left behind must not reach the next."""
    import redis

    yield
    with redis.Redis.from_url(redis_server.url) as client:
        client.flushall()  # our private server only


@pytest.fixture
def alice(django_user_model):
    return django_user_model.objects.create_user("alice", password="pw-alice-123")


@pytest.fixture
def bob(django_user_model):
    return django_user_model.objects.create_user("bob", password="pw-bob-123")


@pytest.fixture
def stranger(django_user_model):
    return django_user_model.objects.create_user("stranger", password="pw-stranger-123")


@pytest.fixture
async def sockets():
    """Opens sockets and always closes them, even when an assertion fails."""
    opened = []

    async def open_(*args, **kwargs):
        communicator, connected, code = await open_socket(*args, **kwargs)
        opened.append(communicator)
        return communicator, connected, code

    yield open_
    for communicator in opened:
        await communicator.disconnect()


@pytest.fixture(scope="session")
def stack(tmp_path_factory):
    """Daphne, a Celery worker and their own Redis, for the end-to-end tests."""
    with running(tmp_path_factory.mktemp("stack"), "stack") as started:
        yield started


@pytest.fixture(scope="session")
def rabbitmq_server(tmp_path_factory):
    """A rabbitmq-server of our own, started once (it takes seconds to boot) by the
    first test that asks; never the machine's RabbitMQ."""
    if rabbitmq.scripts_dir() is None:
        pytest.skip(
            "RABBITMQ TESTS NOT RUN: rabbitmq-server is not installed "
            "(Debian: apt-get install rabbitmq-server; .ci/run does it)"
        )
    server = rabbitmq.RabbitMQServer(tmp_path_factory.mktemp("rabbitmq"))
    try:
        yield server.start()
    finally:
        server.stop()


@pytest.fixture(scope="session")
def push_vapid_keys() -> tuple[str, str]:
    from notifications.push import new_vapid_keys

    return new_vapid_keys()


@pytest.fixture(scope="session")
def push_stack(tmp_path_factory, push_vapid_keys):
    """A real stack with Web Push on, sending to stand-in push services on 127.0.0.1
    over http (tests/push_service.py); the shared `stack` keeps push off."""
    public, private = push_vapid_keys
    env = {
        "NOTIFICATIONS_VAPID_PUBLIC_KEY": public,
        "NOTIFICATIONS_VAPID_PRIVATE_KEY": private,
        "NOTIFICATIONS_VAPID_SUBJECT": "mailto:ops@example.com",
        "NOTIFICATIONS_PUSH_EXTRA_HOSTS": "127.0.0.1",
        "NOTIFICATIONS_PUSH_ALLOW_HTTP": "true",
    }
    with running(tmp_path_factory.mktemp("push-stack"), "push-stack", env=env) as started:
        yield started
