"""Notifications saved in the database and pushed to the recipient's browsers.

`from notifications import notify` is the public entry point; the names are
loaded on first use so that importing the package never needs Django ready.
"""

_PUBLIC = {"notify", "anotify", "notify_many", "notify_all", "send_progress", "mark_read", "flush"}


def __getattr__(name: str):
    if name in _PUBLIC:
        from notifications import publish

        return getattr(publish, name)
    raise AttributeError(f"module 'notifications' has no attribute {name!r}")
