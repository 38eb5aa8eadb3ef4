"""The work behind the demo tasks, as plain functions that know nothing of Celery."""

import random
import statistics
import time
from collections.abc import Callable, Iterator

Progress = Callable[[float, str], None]


def sales_figures(region: str, rng: random.Random) -> list[float]:
    """One region's daily sales for a quarter (stands in for a slow query)."""
    return [round(rng.gauss(1200, 300), 2) for _ in range(90)]


def build_report(regions: list[str], step_seconds: float, progress: Progress) -> dict:
    """Summarise each region's sales, reporting progress after each one."""
    rng = random.Random(42)
    summary = {}
    for done, region in enumerate(regions, start=1):
        time.sleep(step_seconds)  # the slow query a real report would make
        figures = sales_figures(region, rng)
        summary[region] = {"total": round(sum(figures), 2), "median": statistics.median(figures)}
        progress(100 * done / len(regions), f"Summarised {region} ({done}/{len(regions)})")
    return summary


def parse_contacts(lines: list[str]) -> Iterator[tuple[str, str]]:
    """(name, email) pairs from "name,email" lines; a bad row stops the import."""
    for number, line in enumerate(lines, start=1):
        name, _, email = line.partition(",")
        if "@" not in email or email.endswith("@"):
            raise ValueError(f"Row {number}: {email.strip()!r} is not a valid e-mail address.")
        yield name.strip(), email.strip()


def build_statement(month: int, step_seconds: float, progress: Progress) -> int:
    """A month's statement in a few slow steps (stand-ins for queries); its line count."""
    steps = 4
    for step in range(1, steps + 1):
        time.sleep(step_seconds)  # one query a real statement would make
        progress(100 * step / steps, f"Month {month}: step {step} of {steps}")
    return 20 + month
