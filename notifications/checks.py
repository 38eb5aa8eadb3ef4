"""System checks: `manage.py check` warns about a channel layer that loses messages,
about a Web Push setup that cannot send, and refuses preference settings that
name no level or interval.

Notifications are saved whatever the layer, and a client catches up from the
database when it reconnects, but with these layers live pushes go missing in
ways that are easy to miss (README, "Decisions worth knowing").
"""

from django.apps import apps
from django.conf import settings
from django.core import checks
from django.utils.module_loading import import_string

from notifications.conf import app_settings
from notifications.sender import batches

HINT = "Use notifications.layers.RedisChannelLayer as CHANNEL_LAYERS['default']['BACKEND']."

# Layers by class path (a subclass counts as its base): the check id and the loss.
LOSSY = {
    "channels_redis.core.RedisChannelLayer": (
        "notifications.W002",
        "drops a message silently when a process's queue is over capacity, and keeps "
        "Redis connections per event loop (one each for every sync caller's send)",
    ),
    "channels_redis.pubsub.RedisPubSubChannelLayer": (
        "notifications.W003",
        "keeps nothing: whatever is sent while a socket's process reconnects to Redis is lost",
    ),
    "channels.layers.InMemoryChannelLayer": (
        "notifications.W004",
        "works within one process only: Celery workers cannot reach the sockets in Daphne",
    ),
}


def channel_layer(app_configs, **kwargs) -> list[checks.CheckMessage]:
    """A warning when the default channel layer is missing or loses messages."""
    backend = getattr(settings, "CHANNEL_LAYERS", {}).get("default", {}).get("BACKEND")
    if not backend:
        return [
            checks.Warning(
                "No default channel layer is configured: notifications are saved "
                "but never pushed to browsers.",
                hint=HINT,
                id="notifications.W001",
            )
        ]
    layer = import_string(backend)
    if batches(layer):  # the project's layer, known by what it does, not by its path
        return []
    for cls in layer.__mro__:
        found = LOSSY.get(f"{cls.__module__}.{cls.__qualname__}")
        if found:
            check_id, loss = found
            return [checks.Warning(f"The channel layer {backend} {loss}.", hint=HINT, id=check_id)]
    return []


def preference_settings(app_configs, **kwargs) -> list[checks.CheckMessage]:
    """Errors for a digest default, critical level or kind that cannot exist: people
    would silently get no digest, a level nobody can mute, or a kind never sent."""
    from notifications.conf import app_settings
    from notifications.models import Digest, Level

    found = []
    if app_settings.DIGEST_DEFAULT not in Digest.values:
        found.append(
            checks.Error(
                f"NOTIFICATIONS_DIGEST_DEFAULT is {app_settings.DIGEST_DEFAULT!r}.",
                hint=f"Use one of {', '.join(Digest.values)}.",
                id="notifications.E001",
            )
        )
    unknown = [level for level in app_settings.CRITICAL_LEVELS if level not in Level.values]
    if unknown:
        found.append(
            checks.Error(
                f"NOTIFICATIONS_CRITICAL_LEVELS names unknown level(s) {unknown}.",
                hint=f"Use levels of {', '.join(Level.values)}.",
                id="notifications.E002",
            )
        )
    from notifications.validation import KIND_PATTERN

    bad_kinds = [kind for kind in app_settings.KINDS if not KIND_PATTERN.fullmatch(str(kind))]
    if bad_kinds:
        found.append(
            checks.Error(
                f"NOTIFICATIONS_KINDS names kind(s) notify() would refuse: {bad_kinds}.",
                hint="A kind holds only a-z, 0-9, '.', '_' and '-'.",
                id="notifications.E003",
            )
        )
    return found


def push(app_configs, **kwargs) -> list[checks.CheckMessage]:
    """Warnings for a Web Push setup that would send nothing (README, Web Push)."""
    from notifications import push as push_module

    if not push_module.enabled():
        return []
    found = []
    if push_module.library_missing():
        found.append(
            checks.Warning(
                "NOTIFICATIONS_VAPID_* keys are set but pywebpush is not installed: "
                "no push is sent.",
                hint="pip install 'django-celery-notify[push]'",
                id="notifications.W010",
            )
        )
    if not apps.is_installed("notifications.celery"):
        found.append(
            checks.Warning(
                "Web Push is sent by a Celery task, and notifications.celery is not installed.",
                hint="Add 'notifications.celery' to INSTALLED_APPS.",
                id="notifications.W011",
            )
        )
    if not app_settings.VAPID_SUBJECT.startswith(("mailto:", "https://")):
        found.append(
            checks.Warning(
                "NOTIFICATIONS_VAPID_SUBJECT must be a mailto: or https: contact; "
                "push services refuse messages without one.",
                id="notifications.W012",
            )
        )
    return found
