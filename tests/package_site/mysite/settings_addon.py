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
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
from notifications.celery.redelivery import redelivery_options  # noqa: E402

CELERY_BROKER_TRANSPORT_OPTIONS = redelivery_options(visibility_timeout=60)
NOTIFICATIONS_WS_PATH = "live/alerts/"
