"""`python -m config.serve [--workers N] [daphne options]`: this project on
notifications.serve, the package's launcher (see there)."""

import sys

from notifications.serve import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:], default_application="config.asgi:application"))
