"""Django settings: one module, configured by environment variables.

Every variable has a default, and the defaults are safe to expose: debug is
off, and without DJANGO_SECRET_KEY nothing starts. `make run` and the tests
switch the development conveniences on themselves (config/run.py,
tests/settings.py); production differs only by its environment (see README).
"""

import os
import warnings
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from notifications.celery.redelivery import redelivery_options

BASE_DIR = Path(__file__).resolve().parent.parent


def envbool(name: str, default: str = "") -> bool:
    return os.getenv(name, default).strip().lower() in ("1", "true", "yes", "on")


def envint(name: str, default: int) -> int:
    return int(os.getenv(name, str(default)))


def envlist(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in os.getenv(name, default).split(",") if item.strip()]


DEBUG = envbool("DJANGO_DEBUG")

SECRET_KEY = os.getenv("DJANGO_SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG:
        # Anyone who knows the key can forge sessions and socket tickets, so
        # there is no public default to fall back on outside development.
        raise ImproperlyConfigured(
            "DJANGO_SECRET_KEY must be set (a long random string, e.g. from "
            "`python -c 'import secrets; print(secrets.token_urlsafe(50))'`). "
            "For local development only, DJANGO_DEBUG=true uses a built-in key; "
            "`make run` sets it."
        )
    SECRET_KEY = "dev-only-insecure-key-never-use-in-production"

ALLOWED_HOSTS = envlist("DJANGO_ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]")

# Behind HTTPS (directly or via a proxy that sets X-Forwarded-Proto): secure
# cookies, redirects to https and HSTS. Production runs with this on.
HTTPS = envbool("DJANGO_HTTPS")
if HTTPS:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = True
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = envint("DJANGO_HSTS_SECONDS", 31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
CSRF_TRUSTED_ORIGINS = envlist("DJANGO_CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "channels",
    "notifications",
    "notifications.celery",
    "tasks",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "config.urls"
ASGI_APPLICATION = "config.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "config" / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {
    "default": dj_database_url.parse(
        os.getenv("DATABASE_URL", f"sqlite:///{BASE_DIR / 'db.sqlite3'}"),
        # Workers and commands reuse their connection (the health check drops
        # one that went stale); config/asgi.py makes the default 0 for ASGI
        # servers, where a persistent connection would outlive its request.
        conn_max_age=envint("DATABASE_CONN_MAX_AGE", 60),
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql" and envbool("DATABASE_POOL"):
    # Under ASGI (config/asgi.py turns this on) connections close after each
    # request, and opening a PostgreSQL connection per WebSocket handshake costs
    # more than the rest of the handshake: at 5,000 sockets the bench's Daphne
    # accepted 2 a second (90 with the pool). A pool (psycopg_pool, Django's "pool" option) hands
    # each request an open connection and takes it back when Django closes it.
    DATABASES["default"]["CONN_MAX_AGE"] = 0  # the pool, not Django, keeps them
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
        "min_size": 2,
        "max_size": envint("DATABASE_POOL_SIZE", 10),
        "timeout": 10,  # seconds a request waits for a free connection
    }
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Daphne, the Celery worker and manage.py write to one file at once: WAL lets
    # readers run beside a writer, and IMMEDIATE transactions wait for the lock
    # (up to the timeout) instead of failing with "database is locked".
    DATABASES["default"]["OPTIONS"] = {
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
    }

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "login"

# The site's language: pages, the widget and emails (the app ships English and
# Simplified Chinese, "zh-hans"; README, "Translations").
LANGUAGE_CODE = os.getenv("LANGUAGE_CODE", "en-us")
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
# Serve files straight from the apps when collectstatic has not run (make run,
# tests); the Docker image runs collectstatic.
WHITENOISE_USE_FINDERS = True
# ...and then the missing STATIC_ROOT is expected, not worth a warning.
warnings.filterwarnings("ignore", message="No directory at")

# --- Redis: the channel layer and Celery's broker -------------------------

REDIS_URL = os.getenv("REDIS_URL", "redis://127.0.0.1:6379/0")


def redis_host(url: str) -> dict:
    """A channels-redis host entry for one Redis URL.

    A plain URL string would get redis-py's default socket timeout, which meets
    the layer's 5 s blocking pop and kills idle consumers; no timeout plus TCP
    keepalive and a periodic health check keep quiet sockets alive instead.
    """
    return {
        "address": url,
        "socket_timeout": None,
        "socket_connect_timeout": 5,
        "socket_keepalive": True,
        "health_check_interval": 30,
        "retry_on_timeout": True,
        # Commands beyond this many at once wait up to `timeout` seconds for a
        # free connection (see notifications/layers.py) instead of failing.
        "max_connections": envint("CHANNEL_REDIS_MAX_CONNECTIONS", 100),
        "timeout": 10,
    }


# Redis behind Sentinel: the sentinels' addresses, comma-separated host:port,
# and the name they know the primary by (several names shard the channel
# layer; the first also holds the broker and the app's own keys). When set,
# the channel layer, the broker and the app's own Redis all follow their
# primary through a failover.
REDIS_SENTINELS = [
    (host, int(port)) for host, port in (a.rsplit(":", 1) for a in envlist("REDIS_SENTINELS"))
]
REDIS_SENTINEL_MASTERS = envlist("REDIS_SENTINEL_MASTER", "mymaster")


def sentinel_host(master: str) -> dict:
    """A channels-redis host entry (its Sentinel form) for the primary `master`.

    The same connection options as redis_host(); the sentinels themselves are
    asked with short timeouts, so one that hangs costs a moment, not a socket.
    """
    options = redis_host("")
    del options["address"]
    return {
        "sentinels": REDIS_SENTINELS,
        "master_name": master,
        "sentinel_kwargs": {"socket_timeout": 2, "socket_connect_timeout": 2},
        **options,
    }


def channel_layer_hosts() -> list[dict]:
    """Behind Sentinel, one host per name in REDIS_SENTINEL_MASTER (several shard
    the layer over primaries the same sentinels watch); else one per URL."""
    if REDIS_SENTINELS:
        return [sentinel_host(master) for master in REDIS_SENTINEL_MASTERS]
    return [redis_host(url) for url in envlist("CHANNEL_REDIS_URLS", REDIS_URL)]


CHANNEL_LAYERS = {
    "default": {
        # channels-redis with measured fixes; notifications/sender.py batches with
        # its group_send_many.
        "BACKEND": "notifications.layers.RedisChannelLayer",
        "CONFIG": {
            # Several URLs (or primaries), comma-separated, shard the layer across Redis servers.
            "hosts": channel_layer_hosts(),
            # All sockets of one Daphne process share one inbound queue, so the
            # capacity caps the whole process, not one browser.
            "capacity": envint("CHANNEL_LAYER_CAPACITY", 5000),
            # Membership must outlive Daphne's websocket timeout (24 h by default).
            "group_expiry": 86400,
        },
    }
}


def is_redis_broker(url: str) -> bool:
    """Whether kombu serves this broker URL with its Redis transport."""
    return url.split("://", 1)[0].lower() in ("redis", "rediss", "sentinel")


# Redis (the default; behind Sentinel, kombu's sentinel:// form) or RabbitMQ
# (amqp://user:password@host:5672//); see the README.
SENTINEL_BROKER_URL = ";".join(f"sentinel://{host}:{port}" for host, port in REDIS_SENTINELS)
CELERY_BROKER_URL = os.getenv("CELERY_BROKER_URL", SENTINEL_BROKER_URL or REDIS_URL)
CELERY_RESULT_BACKEND = None
# A task is acknowledged when it ends, and given back when its worker process
# dies; each worker process reserves one task at a time (with RabbitMQ: a
# prefetch count of the worker's concurrency).
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
if is_redis_broker(CELERY_BROKER_URL):
    # Redis only emulates acknowledgements: a dead worker's task is delivered
    # again once it has been unacknowledged for the visibility timeout; a live
    # worker re-scores the tasks it holds every quarter of it
    # (notifications/celery/kombu_patches.py), so however long a task runs it is
    # never delivered twice while its worker lives.
    CELERY_BROKER_TRANSPORT_OPTIONS = redelivery_options(envint("CELERY_VISIBILITY_TIMEOUT", 60))
    if CELERY_BROKER_URL.lower().startswith("sentinel://"):
        CELERY_BROKER_TRANSPORT_OPTIONS |= {
            "master_name": REDIS_SENTINEL_MASTERS[0],
            "sentinel_kwargs": {"socket_timeout": 2, "socket_connect_timeout": 2},
        }
else:
    # RabbitMQ acknowledges for real: it gives a task back the moment its
    # worker's connection closes, so there is no timeout to tune. kombu's amqp
    # transport would hand the Redis options to its connection, which drops
    # them unread; they are left out rather than look as if they mattered.
    # What does matter there is the server's consumer_timeout (README).
    CELERY_BROKER_TRANSPORT_OPTIONS = {}
# Publishing a task gives up quickly when the broker is down, so a view can
# answer 503 instead of hanging.
CELERY_TASK_PUBLISH_RETRY_POLICY = {"max_retries": 2, "interval_start": 0, "interval_step": 0.5}

# notifications.celery adds beat's pruning of read notifications by itself.
NOTIFICATIONS_PRUNE_EVERY = envint("NOTIFICATIONS_PRUNE_EVERY", 6 * 3600)

# --- Notifications ---------------------------------------------------------

# Seconds a sync notify() waits for Redis before logging a warning and moving on.
NOTIFICATIONS_SEND_TIMEOUT = float(os.getenv("NOTIFICATIONS_SEND_TIMEOUT", "5"))
# Seconds a running task's latest progress is kept after its last report.
NOTIFICATIONS_PROGRESS_TTL = envint("NOTIFICATIONS_PROGRESS_TTL", 3600)
# Demo tasks one user may start (POST /tasks/start/): a burst of this many, then
# one per 1/rate seconds, over every process; past it the answer is 429.
TASKS_START_BURST = envint("TASKS_START_BURST", 20)
TASKS_START_RATE = float(os.getenv("TASKS_START_RATE", "0.5"))
if not TASKS_START_RATE > 0:  # a bucket that never refills (or NaN) is a typo, not a policy
    raise ImproperlyConfigured(f"TASKS_START_RATE must be above 0, not {TASKS_START_RATE}")
# Seconds a Celery worker counts as alive after its last heartbeat.
NOTIFICATIONS_WORKER_TIMEOUT = envint("NOTIFICATIONS_WORKER_TIMEOUT", 30)
# How many missed notifications a reconnecting socket replays; the rest stay in the inbox.
NOTIFICATIONS_REPLAY_LIMIT = envint("NOTIFICATIONS_REPLAY_LIMIT", 100)
# Read notifications older than this are pruned (beat task and manage.py
# prune_notifications); unread ones are always kept.
NOTIFICATIONS_RETENTION_DAYS = float(os.getenv("NOTIFICATIONS_RETENTION_DAYS", "90"))
# How many ids one "read" frame may name.
NOTIFICATIONS_READ_BATCH = 500
# Frames a user may send per second (sustained, and in a burst) over all their
# sockets in every process (notifications/quota.py) before the socket is told
# "rate_limited" and closed with 4008; a reconnection does not refill the budget.
NOTIFICATIONS_WS_RATE = float(os.getenv("NOTIFICATIONS_WS_RATE", "5"))
NOTIFICATIONS_WS_BURST = envint("NOTIFICATIONS_WS_BURST", 20)
# Sockets one user may hold open at once, over every process; one more is
# closed with 4429 ("close other tabs").
NOTIFICATIONS_MAX_SOCKETS_PER_USER = envint("NOTIFICATIONS_MAX_SOCKETS_PER_USER", 20)
# The largest client frame (Daphne's own default is 1 MiB).
NOTIFICATIONS_WS_MAX_MESSAGE_BYTES = envint("WEBSOCKET_MAX_MESSAGE_BYTES", 64 * 1024)
# A socket whose unsent output (the client stopped reading) stays above this
# many bytes for NOTIFICATIONS_WS_SLOW_SECONDS, or passes eight times it, is
# closed; the client catches up from the database when it reconnects.
NOTIFICATIONS_WS_MAX_UNSENT_BYTES = envint("NOTIFICATIONS_WS_MAX_UNSENT_BYTES", 1024 * 1024)
NOTIFICATIONS_WS_SLOW_SECONDS = float(os.getenv("NOTIFICATIONS_WS_SLOW_SECONDS", "10"))
# Socket tickets (for clients without the session cookie): lifetime in seconds,
# and the extra origins (besides ALLOWED_HOSTS) a ticket socket may come from.
NOTIFICATIONS_TICKET_TTL = envint("NOTIFICATIONS_TICKET_TTL", 30)
NOTIFICATIONS_TICKET_ORIGINS = envlist("NOTIFICATIONS_TICKET_ORIGINS")
# Seconds between each process's copy of its metrics into Redis (see notifications/metrics.py).
NOTIFICATIONS_METRICS_INTERVAL = float(os.getenv("NOTIFICATIONS_METRICS_INTERVAL", "5"))
# /metrics asks for "Authorization: Bearer <token>"; with DEBUG off and no
# token it answers 403 to everyone.
NOTIFICATIONS_METRICS_TOKEN = os.getenv("METRICS_TOKEN", "")
# The email digest of what nobody saw: the site's address for its links (no
# digest without it), minutes a notification waits unseen, beat's interval in
# seconds, and the interval of people who chose none (off, hourly, daily).
NOTIFICATIONS_SITE_URL = os.getenv("NOTIFICATIONS_SITE_URL", "")
NOTIFICATIONS_DIGEST_AFTER_MINUTES = float(os.getenv("NOTIFICATIONS_DIGEST_AFTER_MINUTES", "30"))
NOTIFICATIONS_DIGEST_EVERY = float(os.getenv("NOTIFICATIONS_DIGEST_EVERY", "300"))
NOTIFICATIONS_DIGEST_DEFAULT = os.getenv("NOTIFICATIONS_DIGEST_DEFAULT", "hourly")
# Levels nobody can mute (comma-separated; empty: none).
NOTIFICATIONS_CRITICAL_LEVELS = envlist("NOTIFICATIONS_CRITICAL_LEVELS", "error")
# Kinds the preferences panel offers before anyone chose for them (comma-separated).
NOTIFICATIONS_KINDS = envlist("NOTIFICATIONS_KINDS")
# Outgoing email (the digest), through Django's SMTP backend.
EMAIL_HOST = os.getenv("EMAIL_HOST", "localhost")
EMAIL_PORT = envint("EMAIL_PORT", 25)
EMAIL_HOST_USER = os.getenv("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = os.getenv("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = envbool("EMAIL_USE_TLS")
EMAIL_TIMEOUT = 30
DEFAULT_FROM_EMAIL = os.getenv("DEFAULT_FROM_EMAIL", "webmaster@localhost")
# Web Push: off until both keys are set (`manage.py generate_vapid_keys` prints
# a pair); the subject is the contact push services see.
NOTIFICATIONS_VAPID_PUBLIC_KEY = os.getenv("NOTIFICATIONS_VAPID_PUBLIC_KEY", "")
NOTIFICATIONS_VAPID_PRIVATE_KEY = os.getenv("NOTIFICATIONS_VAPID_PRIVATE_KEY", "")
NOTIFICATIONS_VAPID_SUBJECT = os.getenv("NOTIFICATIONS_VAPID_SUBJECT", "mailto:admin@example.com")
# Push endpoints allowed besides the browsers' own push services (host names,
# with their subdomains), and whether plain http is: for a test's stand-in only.
if envlist("NOTIFICATIONS_PUSH_EXTRA_HOSTS"):
    from notifications.conf import DEFAULTS as _NOTIFICATIONS_DEFAULTS

    NOTIFICATIONS_PUSH_SERVICE_HOSTS = [
        *_NOTIFICATIONS_DEFAULTS["PUSH_SERVICE_HOSTS"],
        *envlist("NOTIFICATIONS_PUSH_EXTRA_HOSTS"),
    ]
NOTIFICATIONS_PUSH_ALLOW_HTTP = envbool("NOTIFICATIONS_PUSH_ALLOW_HTTP")
# Ticket nonces, the per-user limits and the metrics live in this Redis (or,
# behind Sentinel, on the first primary the sentinels watch).
NOTIFICATIONS_REDIS_URL = REDIS_URL
if REDIS_SENTINELS:
    NOTIFICATIONS_REDIS_SENTINELS = REDIS_SENTINELS
    NOTIFICATIONS_REDIS_SENTINEL_MASTER = REDIS_SENTINEL_MASTERS[0]

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.getenv("LOG_LEVEL", "INFO")},
    "loggers": {
        "django.channels.server": {"level": "WARNING"},
        # Whatever LOG_LEVEL says, each Daphne says where it listens (a worker
        # of config.serve --workers is ready when it has).
        "daphne.server": {"level": "INFO"},
    },
}
