"""The app's settings: every `NOTIFICATIONS_*` name, its default, and what it is for.

A project sets any of them in its Django settings module; the app reads them
only through `app_settings` (`app_settings.SEND_TIMEOUT` is
`settings.NOTIFICATIONS_SEND_TIMEOUT`, or its default), at the moment of use,
so a project that sets none gets working defaults and tests may override any.
"""

from typing import Any

from django.conf import settings

DEFAULTS: dict[str, Any] = {
    # The Redis for ticket nonces, the per-user limits and /metrics; None means
    # the first host of the default channel layer.
    "REDIS_URL": None,
    # Or the sentinels ([(host, port), ...]) watching that Redis and the name
    # they know its primary by: it then follows a failover. None (with
    # REDIS_URL None too) means the first channel-layer host's, when it is of
    # the Sentinel form.
    "REDIS_SENTINELS": None,
    "REDIS_SENTINEL_MASTER": None,
    # Where browsers open the notification socket (notifications.routing).
    "WS_PATH": "ws/notifications/",
    # Seconds a sync notify()'s push may take before it is logged as failed;
    # also what flush() waits, and what a caller waits once 10,000 are queued.
    "SEND_TIMEOUT": 5.0,
    # Seconds a running task's latest progress is kept after its last report, so
    # a page that loads or reconnects mid-task shows its bar (progress_state.py).
    "PROGRESS_TTL": 3600,
    # Seconds a Celery worker counts as alive after its last heartbeat (every third
    # of this); a bar whose worker is gone says it waits for a worker.
    "WORKER_TIMEOUT": 30,
    # Missed notifications a reconnecting socket replays; the rest stay in the inbox.
    "REPLAY_LIMIT": 100,
    # Read notifications older than this many days are pruned; unread never are.
    "RETENTION_DAYS": 90.0,
    # Seconds between beat's pruning runs (notifications.celery).
    "PRUNE_EVERY": 6 * 3600,
    # Ids one `read` frame may name.
    "READ_BATCH": 500,
    # Frames per second one user's sockets may send together, sustained and in a burst.
    "WS_RATE": 5.0,
    "WS_BURST": 20,
    # Sockets one user may hold open over every process; one more is closed with 4429.
    "MAX_SOCKETS_PER_USER": 20,
    # The largest message a client may send; bigger frames are refused with 1009
    # by the protocol layer before they are buffered (notifications/daphne_patches.py).
    "WS_MAX_MESSAGE_BYTES": 64 * 1024,
    # A socket whose unsent output stays above this many bytes for WS_SLOW_SECONDS
    # (or passes eight times it) is dropped; it catches up when it reconnects.
    "WS_MAX_UNSENT_BYTES": 1024 * 1024,
    "WS_SLOW_SECONDS": 10.0,
    # Socket tickets: lifetime in seconds, and the origins besides the site's own
    # that a ticket socket may come from.
    "TICKET_TTL": 30,
    "TICKET_ORIGINS": [],
    # Seconds between each process's copy of its metrics into Redis.
    "METRICS_INTERVAL": 5.0,
    # /metrics asks for "Authorization: Bearer <token>"; with DEBUG off and no
    # token it answers 403 to everyone.
    "METRICS_TOKEN": "",
}


class AppSettings:
    def __getattr__(self, name: str) -> Any:
        if name not in DEFAULTS:
            raise AttributeError(f"no notifications setting {name!r}")
        value = getattr(settings, f"NOTIFICATIONS_{name}", DEFAULTS[name])
        if name == "REDIS_URL" and value is None:
            return _channel_layer_redis_url()
        if name in SENTINEL_KEYS and value is None and self._follows_the_layer():
            return _channel_layer_first_host()[SENTINEL_KEYS[name]]
        return value

    def _follows_the_layer(self) -> bool:
        """Whether the app's Redis is left to the channel layer's first host, a Sentinel one."""
        if getattr(settings, "NOTIFICATIONS_REDIS_URL", None) is not None:
            return False
        host = _channel_layer_first_host()
        return isinstance(host, dict) and "master_name" in host and "address" not in host


# App setting -> the key of channels-redis's Sentinel host form it is taken from.
SENTINEL_KEYS = {"REDIS_SENTINELS": "sentinels", "REDIS_SENTINEL_MASTER": "master_name"}


def _channel_layer_first_host() -> str | dict | tuple:
    config = getattr(settings, "CHANNEL_LAYERS", {}).get("default", {}).get("CONFIG", {})
    hosts = config.get("hosts") or ["redis://127.0.0.1:6379/0"]
    return hosts[0]


def _channel_layer_redis_url() -> str:
    """The address of the default channel layer's first Redis host, as a URL."""
    host = _channel_layer_first_host()
    if isinstance(host, dict):
        host = host.get("address", "redis://127.0.0.1:6379/0")
    if isinstance(host, (tuple, list)):
        return f"redis://{host[0]}:{host[1]}/0"
    return host


app_settings = AppSettings()
