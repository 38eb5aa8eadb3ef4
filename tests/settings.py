"""The test run's settings: the project's, with the development switches on.

The project's defaults refuse to start without a secret key; the tests (like
`make run`) set their own. Child processes the tests start inherit these
variables; the end-to-end stack sets production-like ones of its own.
"""

import os

os.environ.setdefault("DJANGO_DEBUG", "true")
os.environ.setdefault("DJANGO_SECRET_KEY", "tests-only-secret-key-" + "t" * 30)

from config.settings import *  # noqa: E402, F403
