"""The version matrix: the supported Django × Python pairs, and the oldest and the
newest releases of everything else, each on the fast tier of the suite (real
Redis, Daphne, Celery and Chromium, as `make test`); the Django sessions also
install the built wheel beside their Django in a new project (tests/test_package.py).
`make matrix` runs it all, `make matrix SESSIONS="oldest"` one session; the
README's "Supported versions" is the table this file tests. The main combination
(requirements/, Python 3.11, Django 5.2) runs everything in `make test-all`.
"""

import nox

nox.options.error_on_missing_interpreters = True
nox.options.reuse_venv = "yes"

FAST_TIER = ("-m", "not slow and not bench and not package")
# The fast tier and the package test: the wheel installed beside that Django in a new project.
WITH_PACKAGE = ("-m", "not slow and not bench")
# Django's own Python support: 6.0 and 6.1 need 3.12.
PAIRS = [
    ("3.11", "5.2"),
    ("3.12", "5.2"),
    ("3.13", "5.2"),
    ("3.12", "6.0"),
    ("3.13", "6.0"),
    ("3.12", "6.1"),
    ("3.13", "6.1"),
]
# The oldest release of each dependency the package declares support for.
OLDEST = [
    "Django~=5.2.0",
    "channels==4.2.2",
    "channels-redis==4.2.0",
    "daphne==4.2.2",
    "celery==5.5.0",
    "kombu==5.5.2",
    "redis==5.0.1",
]


def run_suite(session: nox.Session, *marks: str) -> None:
    session.run(
        "python", "-m", "pytest", "-n", "2", "--dist", "loadscope", "-q", *marks, *session.posargs
    )


def django_session(python: str, django: str) -> None:
    """Define the session `django<version>-py<python>` (e.g. django6.1-py3.13)."""

    @nox.session(python=python, name=f"django{django}-py{python}")
    def run(session: nox.Session) -> None:
        session.install("-r", "requirements/dev.txt")
        session.install(f"Django~={django}.0")
        session.env["PACKAGE_TEST_DJANGO"] = f"Django~={django}.0"
        run_suite(session, *WITH_PACKAGE)

    run.__doc__ = f"The pinned requirements with Django {django} (its newest patch release)."


for python, django in PAIRS:
    django_session(python, django)


@nox.session(python="3.11")
def oldest(session: nox.Session) -> None:
    """The oldest supported release of every dependency together."""
    session.install("-r", "requirements/dev.txt")
    session.install(*OLDEST)
    run_suite(session, *FAST_TIER)


@nox.session(python="3.13")
def newest(session: nox.Session) -> None:
    """The newest release of everything the package depends on, whatever the pins
    say: the check that a new patch or minor release breaks no import."""
    session.install("-r", "requirements/dev.txt")
    session.install(
        "--upgrade", "Django", "channels", "channels-redis", "daphne", "celery", "kombu", "redis"
    )
    run_suite(session, *FAST_TIER)
