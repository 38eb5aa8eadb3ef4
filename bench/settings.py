"""The product's settings plus a second channel layer configured the tutorial way.

Only the benchmark uses this module (DJANGO_SETTINGS_MODULE=bench.settings), so
the product never carries the reference consumer's layer.
"""

import os

from config.settings import *  # noqa: F403
from config.settings import CHANNEL_LAYERS, REDIS_URL

# What the common Channels tutorials configure: a plain Redis URL (so redis-py's
# default socket timeout) and the default capacity of 100 per channel.
CHANNEL_LAYERS = {
    **CHANNEL_LAYERS,
    "tutorial": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": {"hosts": [os.getenv("BENCH_TUTORIAL_REDIS_URL", REDIS_URL)]},
    },
}
