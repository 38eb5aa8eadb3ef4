"""The benchmark's table and plots, from its JSON results (so both can be redrawn)."""

import json
import sys
from pathlib import Path


def _fmt(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.1f}" if abs(value) < 100 else f"{value:,.0f}"
    return f"{value:,}" if isinstance(value, int) else str(value)


def _ratio(ours, tutorial) -> str:
    if not isinstance(ours, int | float) or not isinstance(tutorial, int | float) or not tutorial:
        return "-"
    return f"{ours / tutorial:.2f}"


def rows(size: dict) -> list[tuple[str, object, object, bool]]:
    """(label, ours, tutorial, ratio meaningful) for one size."""
    ours, tut = size.get("ours", {}), size.get("tutorial", {})

    def get(result: dict, *keys):
        for key in keys:
            if not isinstance(result, dict) or key not in result:
                return None
            result = result[key]
        return result

    out = [
        (
            "connections accepted /s",
            get(ours, "connect", "per_second"),
            get(tut, "connect", "per_second"),
            True,
        ),
        (
            "sockets connected",
            get(ours, "connect", "connected"),
            get(tut, "connect", "connected"),
            False,
        ),
        ("connect failures", get(ours, "connect", "failed"), get(tut, "connect", "failed"), False),
        (
            "handshake p99 ms",
            get(ours, "connect", "handshake_p99_ms"),
            get(tut, "connect", "handshake_p99_ms"),
            True,
        ),
        (
            "Daphne KB per idle connection",
            get(ours, "connect", "kb_per_connection"),
            get(tut, "connect", "kb_per_connection"),
            True,
        ),
        (
            "one publisher, calls /s",
            get(ours, "ceiling", "calls_per_second"),
            get(tut, "ceiling", "calls_per_second"),
            True,
        ),
        (
            "  its call p50 ms",
            get(ours, "ceiling", "call_p50_ms"),
            get(tut, "ceiling", "call_p50_ms"),
            True,
        ),
        ("  its loss (lost/sent)", _loss(get(ours, "ceiling")), _loss(get(tut, "ceiling")), False),
        (
            "all publishers together, calls /s",
            get(ours, "ceiling_all", "calls_per_second"),
            get(tut, "ceiling_all", "calls_per_second"),
            True,
        ),
        (
            "  their loss (lost/sent)",
            _loss(get(ours, "ceiling_all")),
            _loss(get(tut, "ceiling_all")),
            False,
        ),
        ("busy caller: p50 ms over idle's", get(ours, "busy_caller", "p50_delta_ms"), None, False),
        ("busy caller: p90 ms over idle's", get(ours, "busy_caller", "p90_delta_ms"), None, False),
    ]
    by_rate = {}
    for kind, result in (("ours", ours), ("tutorial", tut)):
        for r in result.get("rates", []):
            by_rate.setdefault(r["target_rate"], {})[kind] = r
    for rate, pair in sorted(by_rate.items()):
        o, t = pair.get("ours", {}), pair.get("tutorial", {})
        label = f"@{rate:g}/s"
        out += [
            (f"{label} achieved /s", o.get("achieved_rate"), t.get("achieved_rate"), True),
            (f"{label} p50 ms", o.get("p50_ms"), t.get("p50_ms"), True),
            (f"{label} p90 ms", o.get("p90_ms"), t.get("p90_ms"), True),
            (f"{label} p99 ms", o.get("p99_ms"), t.get("p99_ms"), True),
            (f"{label} max ms", o.get("max_ms"), t.get("max_ms"), True),
            (f"{label} lost/sent", _loss(o), _loss(t), False),
        ]
    out += [
        (
            "sustained /s (no loss, p99<=50ms)",
            get(ours, "sustained_rate"),
            get(tut, "sustained_rate"),
            True,
        ),
        (
            "broadcast: last client ms",
            get(ours, "broadcast", "last_client_ms"),
            get(tut, "broadcast", "last_client_ms"),
            True,
        ),
        (
            "broadcast: lost/users",
            _bloss(get(ours, "broadcast")),
            _bloss(get(tut, "broadcast")),
            False,
        ),
        (
            "broadcast floor: last client ms",
            get(ours, "floor", "last_client_ms"),
            get(tut, "floor", "last_client_ms"),
            True,
        ),
        (
            "storm: sockets back",
            get(ours, "storm", "reconnected"),
            get(tut, "storm", "reconnected"),
            False,
        ),
        ("storm: missed lost/sent", _loss(get(ours, "storm")), _loss(get(tut, "storm")), False),
        (
            "storm: settled s",
            get(ours, "storm", "settle_seconds"),
            get(tut, "storm", "settle_seconds"),
            True,
        ),
        (
            "storm: cold connect s",
            get(ours, "storm", "cold_connect_seconds"),
            get(tut, "storm", "cold_connect_seconds"),
            True,
        ),
        (
            "sockets closed unexpectedly",
            get(ours, "sockets", "unexpected_closes"),
            get(tut, "sockets", "unexpected_closes"),
            False,
        ),
    ]
    return out


def _loss(result) -> str | None:
    if not result:
        return None
    return f"{result['lost']}/{result['sent']}" + (
        f" dup {result['duplicates']}" if result.get("duplicates") else ""
    )


def _signed(value) -> str:
    return "-" if value is None else f"{value:+.1f}"


def _bloss(result) -> str | None:
    return None if not result else f"{result['lost']}/{result['users']}"


def table(results: dict) -> str:
    lines = []
    for size in results["sizes"]:
        database = size.get("database", results["meta"].get("database", "sqlite"))
        lines.append(
            f"\n{size['users']:,} users ({database}, "
            f"{results['meta']['publishers']} publisher processes, "
            f"{results['meta']['clients']} client processes)"
        )
        header = f"{'':36} {'ours':>14} {'tutorial':>14} {'ours/tutorial':>14}"
        lines += [header, "-" * len(header)]
        for label, ours, tut, ratio in rows(size):
            shown = _ratio(ours, tut) if ratio else ""
            lines.append(f"{label:36} {_fmt(ours):>14} {_fmt(tut):>14} {shown:>14}")
    return "\n".join(lines)


def servers(results: dict) -> str:
    """Ours on Daphne against ours on uvicorn, for sizes that ran both (--kinds
    ours,uvicorn): the same rows, uvicorn in the second column."""
    lines = []
    for size in results["sizes"]:
        if "ours" not in size or "uvicorn" not in size:
            continue
        lines.append(f"\n{size['users']:,} users: Daphne against uvicorn")
        header = f"{'':36} {'Daphne':>14} {'uvicorn':>14} {'uvicorn/Daphne':>14}"
        lines += [header, "-" * len(header)]
        for label, daphne, uvicorn, ratio in rows({**size, "tutorial": size["uvicorn"]}):
            shown = _ratio(uvicorn, daphne) if ratio else ""
            lines.append(f"{label:36} {_fmt(daphne):>14} {_fmt(uvicorn):>14} {shown:>14}")
    return "\n".join(lines)


def targets(results: dict) -> str:
    """Issue 21's ratios, for each size and database, each with its target."""
    tutorials = {s["users"]: s["tutorial"] for s in results["sizes"] if "tutorial" in s}
    lines = []
    for size in results["sizes"]:
        for kind in ("ours", "uvicorn"):
            ours = size.get(kind)
            if not ours:
                continue
            lines.append(f"\n{size['users']:,} users, {kind}, {size.get('database')}: targets")
            tut = tutorials.get(size["users"], {})
            mine = ours.get("ceiling_all", {}).get("calls_per_second")
            theirs = tut.get("ceiling_all", {}).get("calls_per_second")
            lines.append(
                f"  publishers flat out: {_fmt(mine)} against the tutorial's {_fmt(theirs)}/s: "
                f"{_ratio(mine, theirs)}x (target >= 4), lost {_loss(ours.get('ceiling_all'))}"
            )
            cast = ours.get("broadcast", {}).get("last_client_ms")
            floor = ours.get("floor", {}).get("last_client_ms")
            lines.append(
                f"  broadcast: last client {_fmt(cast)} ms, floor {_fmt(floor)} ms: "
                f"{_ratio(cast, floor)}x (target <= 1.5)"
            )
            storm = ours.get("storm")
            if storm:
                lines.append(
                    f"  storm: {storm['reconnected']}/{storm['sockets']} back, missed "
                    f"{_loss(storm)}, settled {storm['settle_seconds']:.1f} s against a cold "
                    f"connect of {storm['cold_connect_seconds']:.1f} s: "
                    f"{storm['settle_over_cold']:.2f}x (target <= 2)"
                )
            kb = ours.get("connect", {}).get("kb_per_connection")
            lines.append(f"  KB per idle socket: {_fmt(kb)} (target <= 28)")
    return "\n".join(lines)


def comparison(results: dict) -> str:
    """PostgreSQL against SQLite (and the tutorial) in one run of `--database both`:
    the ratios issue 11 sets targets for."""
    by_db = {(s.get("database"), s["users"]): s for s in results["sizes"]}
    lines = []
    for size in sorted({users for _, users in by_db}):
        lite, pg = by_db.get(("sqlite", size)), by_db.get(("postgresql", size))
        if not (lite and pg):
            continue
        tut = lite.get("tutorial", {})

        def ours(entry: dict, *keys):
            value = entry.get("ours", {})
            for key in keys:
                value = value.get(key) if isinstance(value, dict) else None
            return value

        lines.append(f"\n{size:,} users: PostgreSQL against SQLite, one run")
        agg_pg, agg_lite = (
            ours(pg, "ceiling_all", "calls_per_second"),
            ours(lite, "ceiling_all", "calls_per_second"),
        )
        tut_one = tut.get("ceiling", {}).get("calls_per_second")
        lines.append(
            f"  all publishers, notify()/s: PostgreSQL {_fmt(agg_pg)}, SQLite {_fmt(agg_lite)}: "
            f"{_ratio(agg_pg, agg_lite)}x (target >= 0.8); tutorial's publisher "
            f"{_fmt(tut_one)}: {_ratio(agg_pg, tut_one)}x (target >= 5)"
        )
        one_pg, one_lite = (
            ours(pg, "ceiling", "calls_per_second"),
            ours(lite, "ceiling", "calls_per_second"),
        )
        lines.append(
            f"  one publisher flat out: PostgreSQL {_fmt(one_pg)}, SQLite {_fmt(one_lite)}: "
            f"{_ratio(one_pg, one_lite)}x"
        )
        pg_rates = {r["target_rate"]: r for r in ours(pg, "rates") or []}
        lite_rates = {r["target_rate"]: r for r in ours(lite, "rates") or []}
        top = ours(pg, "sustained_rate") or max(pg_rates, default=None)
        if top in pg_rates and top in lite_rates:
            p99_pg, p99_lite = pg_rates[top]["p99_ms"], lite_rates[top]["p99_ms"]
            lines.append(
                f"  p99 at {top:g}/s: PostgreSQL {_fmt(p99_pg)} ms, SQLite {_fmt(p99_lite)} ms: "
                f"{_ratio(p99_pg, p99_lite)}x (target <= 1.2)"
            )
        for entry in (lite, pg):
            busy = ours(entry, "busy_caller") or {}
            if busy:
                lines.append(
                    f"  busy caller on {entry['database']}: "
                    f"p50 {_signed(busy['p50_delta_ms'])} ms, "
                    f"p90 {_signed(busy.get('p90_delta_ms'))} ms over an idle one (target <= 2)"
                )
        lost = sum(
            r.get("lost", 0)
            for entry in (lite, pg)
            for phase in ("ceiling", "ceiling_all")
            for r in [ours(entry, phase) or {}]
        ) + sum(r["lost"] for entry in (lite, pg) for r in ours(entry, "rates") or [])
        lines.append(f"  lost, ours, every phase above: {lost}")
    return "\n".join(lines)


def plots(results: dict, directory: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    directory.mkdir(parents=True, exist_ok=True)
    styles = {"ours": "-", "tutorial": "--"}
    written = []

    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    for size in results["sizes"]:
        for kind in ("ours", "tutorial"):
            rates = size.get(kind, {}).get("rates", [])
            points = [(r["target_rate"], r["p99_ms"], r["lost"]) for r in rates if r["p99_ms"]]
            if not points:
                continue
            xs, ys, lost = zip(*points, strict=True)
            (line,) = ax.plot(
                xs, ys, styles[kind], marker="o", label=f"{kind}, {size['users']:,} users"
            )
            for x, y, n in points:
                if n:
                    ax.annotate(
                        f"lost {n}",
                        (x, y),
                        textcoords="offset points",
                        xytext=(4, 4),
                        fontsize=7,
                        color=line.get_color(),
                    )
    ax.axhline(50, color="grey", linewidth=0.8, linestyle=":")
    ax.set_yscale("log")
    ax.set_xlabel("notifications published per second (target)")
    ax.set_ylabel("p99 task→browser latency, ms (log)")
    ax.set_title("Latency against publish rate (dotted: 50 ms target)")
    ax.legend(fontsize=8)
    ax.grid(True, which="both", alpha=0.3)
    path = directory / "bench-latency.png"
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    written.append(path)

    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    for size in results["sizes"]:
        for kind in ("ours", "tutorial"):
            curve = size.get(kind, {}).get("connect", {}).get("memory_curve")
            if not curve:
                continue
            base = curve[0][1]
            ax.plot(
                [c for c, _ in curve],
                [(r - base) / 2**20 for _, r in curve],
                styles[kind],
                marker=".",
                label=f"{kind}, {size['users']:,} users",
            )
    ax.set_xlabel("open connections")
    ax.set_ylabel("Daphne RSS above its idle baseline, MiB")
    ax.set_title("Daphne memory against connections")
    ax.legend(fontsize=8)
    ax.grid(True, alpha=0.3)
    path = directory / "bench-memory.png"
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    written.append(path)
    return written


if __name__ == "__main__":
    # Redraw from saved results: python -m bench.report results.json [docs]
    data = json.loads(Path(sys.argv[1]).read_text())
    print(table(data))
    print(comparison(data))
    print(targets(data))
    if len(sys.argv) > 2:
        for p in plots(data, Path(sys.argv[2])):
            print(f"Plot: {p}")
