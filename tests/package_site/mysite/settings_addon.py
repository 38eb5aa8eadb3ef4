# Appended to the settings startproject wrote.
import os  # noqa: E402

INSTALLED_APPS += ["channels", "notifications", "notifications.celery", "accounts", "jobs"]  # noqa: F821
AUTH_USER_MODEL = "accounts.User"
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
ASGI_APPLICATION = "mysite.asgi.application"
REDIS_URL = os.environ["REDIS_URL"]
CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "notifications.layers.RedisChannelLayer",
        "CONFIG": {"hosts": [REDIS_URL]},
    }
}
CELERY_BROKER_URL = REDIS_URL
NOTIFICATIONS_WS_PATH = "live/alerts/"
