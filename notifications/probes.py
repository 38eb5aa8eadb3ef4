"""How the patch modules (daphne_patches, layers, celery.kombu_patches) decide
what to change: by what the installed library has and does, not by its version
number, so a new patch or minor release never breaks an import. A change whose
hooks are gone is skipped with a WARNING naming them; a fix whose bug the
library no longer shows is skipped with one INFO line."""

import logging
import warnings
from collections.abc import Callable

log = logging.getLogger(__name__)


def missing(owner: object, *names: str) -> list[str]:
    """The attributes of `owner` a patch reads that it lacks, as `Owner.name`."""
    label = getattr(owner, "__qualname__", None) or getattr(owner, "__name__", repr(owner))
    return [f"{label}.{name}" for name in names if not hasattr(owner, name)]


def raises(call: Callable[[], object], error: type[BaseException]) -> bool:
    """Whether `call()` fails with `error`: a buggy path run once, on stand-ins."""
    try:
        with warnings.catch_warnings():  # a stand-in may trip a library's warnings
            warnings.simplefilter("ignore")
            call()
    except error:
        return True
    except Exception:  # another outcome: whatever it is, not the bug probed for
        return False
    return False


def skipped(library: str, change: str, lacking: list[str]) -> None:
    """Log a change left out because the library lacks what it hooks into."""
    log.warning(
        "%s: %s is off, this release lacks %s (see the README's 'Patches')",
        library,
        change,
        ", ".join(lacking),
    )


def not_needed(library: str, fix: str) -> None:
    """Log a fix left out because the library already behaves."""
    log.info("%s already %s; its own code is kept", library, fix)
