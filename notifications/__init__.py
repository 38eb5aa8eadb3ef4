"""Notifications saved in the database and pushed to the recipient's browsers.

`from notifications import notify` is the public entry point; the names are
loaded on first use so that importing the package never needs Django ready.
"""

from importlib import import_module

# Each public name and the module that defines it.
_PUBLIC = {
    "notify": "publish",
    "anotify": "publish",
    "notify_many": "publish",
    "notify_all": "publish",
    "send_progress": "publish",
    "mark_read": "reads",
    "flush": "sender",
}


def __getattr__(name: str):
    if name in _PUBLIC:
        return getattr(import_module(f"notifications.{_PUBLIC[name]}"), name)
    raise AttributeError(f"module 'notifications' has no attribute {name!r}")
