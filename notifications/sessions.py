"""Sockets end when the access they were opened with ends.

A socket authenticates once, at the handshake. Without this module it would
keep receiving after its session logged out, after the password changed
(which signs out every session) and after the account was deactivated or
deleted, until the browser closed it. Here each of those sends a
`session.check` event to the user's group once the change is committed;
every socket of the user, in every Daphne process, then closes with 4401 if
its own access ended (NotificationConsumer.session_check).

Changes that bypass model signals (QuerySet.update(), raw SQL) are not seen;
such sockets are refused at their next handshake.
"""

from importlib import import_module
from types import SimpleNamespace

from django.conf import settings
from django.contrib.auth import get_user, get_user_model, user_logged_out
from django.db.models.signals import post_delete, post_save, pre_save

from notifications.groups import user_group
from notifications.sender import send_on_commit
from notifications.users import has_field

CHECK = "session.check"  # the consumer's session_check() handles it


def user_of_session(key: str):
    """The user whose session `key` is, or anonymous: Django's own check, as on
    every HTTP request (the backend, the password hash kept in the session,
    inactive and deleted users)."""
    session = import_module(settings.SESSION_ENGINE).SessionStore(key)
    return get_user(SimpleNamespace(session=session))


def _check_after_commit(user_id: int, **fields: str) -> None:
    send_on_commit([(user_group(user_id), {"type": CHECK, **fields})])


def _logged_out(sender, request, user, **kwargs) -> None:
    key = getattr(getattr(request, "session", None), "session_key", None)
    if user is not None and key:
        _check_after_commit(user.pk, ended=key)


def _note_access_change(sender, instance, update_fields=None, **kwargs) -> None:
    """Before a save: does it change what signs the user in? (One query per save
    that may touch the password or the active flag; last_login updates skip it.)"""
    watched = [name for name in ("password", "is_active") if has_field(name)]
    if instance._state.adding or (
        update_fields is not None and not set(watched) & set(update_fields)
    ):
        return
    before = sender.objects.filter(pk=instance.pk).values(*watched).first()
    instance._access_changed = before is not None and before != {
        name: getattr(instance, name) for name in watched
    }


def _access_saved(sender, instance, created=False, **kwargs) -> None:
    if instance.__dict__.pop("_access_changed", False):
        _check_after_commit(instance.pk)


def _deleted(sender, instance, **kwargs) -> None:
    _check_after_commit(instance.pk)


def connect() -> None:
    """Wire the signals (NotificationsConfig.ready)."""
    user_model = get_user_model()
    user_logged_out.connect(_logged_out, dispatch_uid="notifications.sessions.logout")
    pre_save.connect(_note_access_change, sender=user_model, dispatch_uid="notifications.pre")
    post_save.connect(_access_saved, sender=user_model, dispatch_uid="notifications.post")
    post_delete.connect(_deleted, sender=user_model, dispatch_uid="notifications.deleted")
