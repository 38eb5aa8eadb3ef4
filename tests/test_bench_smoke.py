"""The benchmark at its CI size: it runs, prints its table, writes its JSON, loses nothing."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

BASE_DIR = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.bench
# Ours on both tested servers, and the tutorial.
KINDS = ["--kinds", "ours,uvicorn,tutorial"]


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench") / "smoke.json"
    # The database the suite runs on: the PostgreSQL server of DATABASE_URL, else SQLite.
    server = os.environ.get("DATABASE_URL", "")
    if server.startswith(("postgres://", "postgresql://")):
        database = ["--database", "postgresql", "--postgres", server.rsplit("/", 1)[0]]
    else:
        database = ["--database", "sqlite"]
    began = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "bench.run", "--smoke", "--out", str(out), *KINDS, *database],
        cwd=BASE_DIR,
        capture_output=True,
        text=True,
        timeout=170,
    )
    seconds = time.monotonic() - began
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result.stdout, json.loads(out.read_text()), seconds


def test_smoke_size_prints_the_side_by_side_table(smoke):
    stdout, _, _ = smoke
    for row in (
        "ours",
        "tutorial",
        "ours/tutorial",
        "connections accepted /s",
        "Daphne KB per idle connection",
        "one publisher, calls /s",
        "p99 ms",
        "lost/sent",
        "broadcast: last client ms",
        "Daphne against uvicorn",
        "uvicorn/Daphne",
    ):
        assert row in stdout


def test_smoke_says_which_database_it_ran_on(smoke):
    stdout, results, _ = smoke
    expected = (
        "postgresql" if os.environ.get("DATABASE_URL", "").startswith("postgres") else "sqlite"
    )
    assert results["meta"]["database"] == expected
    assert f"Database: {expected}" in stdout
    assert f"users ({expected}, " in stdout


def test_smoke_json_has_every_figure_for_both_consumers(smoke):
    _, results, _ = smoke
    assert results["meta"]["smoke"] is True
    (size,) = results["sizes"]
    for kind in ("ours", "uvicorn", "tutorial"):
        result = size[kind]
        assert {"connect", "ceiling", "rates", "broadcast", "sockets", "sustained_rate"} <= set(
            result
        )
        assert {"per_second", "kb_per_connection", "memory_curve"} <= set(result["connect"])
        for rate in result["rates"]:
            assert {"target_rate", "achieved_rate", "sent", "delivered", "lost"} <= set(rate)
            assert {"p50_ms", "p90_ms", "p99_ms", "max_ms"} <= set(rate)
        assert {"delivered", "lost", "last_client_ms"} <= set(result["broadcast"])


@pytest.mark.parametrize("server", ["ours", "uvicorn"])
def test_our_consumer_loses_nothing_at_the_smoke_size(smoke, server):
    _, results, _ = smoke
    ours = results["sizes"][0][server]
    assert ours["connect"]["failed"] == 0
    assert ours["sockets"]["unexpected_closes"] == 0
    assert ours["ceiling"]["lost"] == 0
    for rate in ours["rates"]:
        assert rate["sent"] > 0
        assert (rate["lost"], rate["duplicates"], rate["failures"]) == (0, 0, 0)
    assert ours["broadcast"]["lost"] == 0


@pytest.mark.parametrize("server", ["ours", "uvicorn"])
def test_a_reconnect_storm_gets_every_missed_notification_once(smoke, server):
    storm = results_of(smoke, server)["storm"]
    assert storm["reconnected"] == storm["sockets"] == 200
    assert storm["sent"] > 0
    assert (storm["lost"], storm["duplicates"]) == (0, 0)
    assert storm["settle_seconds"] >= storm["reconnect_seconds"] > 0


@pytest.mark.parametrize("server", ["ours", "uvicorn"])
def test_the_broadcast_floor_reaches_as_many_sockets_with_a_frame_as_big(smoke, server):
    result = results_of(smoke, server)
    floor = result["floor"]
    assert floor["sockets"] == floor["delivered"] == result["broadcast"]["users"]
    assert floor["frame_bytes"] > 200
    assert floor["last_client_ms"] > 0


def test_smoke_prints_the_capacity_targets(smoke):
    stdout, _, _ = smoke
    for line in ("x (target >= 4)", "x (target <= 1.5)", "x (target <= 2)", "(target <= 28)"):
        assert line in stdout


def results_of(smoke, server: str) -> dict:
    return smoke[1]["sizes"][0][server]


def test_smoke_size_fits_in_two_minutes(smoke):
    # CI's budget; it takes about 50 s on the 2-core machine with both servers.
    assert smoke[2] < 120
