"""What a simulation measured: per workflow end-to-end latency percentiles, SLO attainment and
throughput; per class attainment; per engine utilization, batch size and KV occupancy; call
accounting. As a plain dict (sorted keys, floats to 6 significant digits, no wall-clock times, so
the same seed gives identical JSON), a rich table, and a plot.

Definitions (over the measurement window [warmup, duration)):
- a query is counted where it arrived in the window; SLO attainment = queries that completed
  within the workflow's SLO latency / queries that arrived (dropped and unfinished ones miss);
  the SLO is met when attainment >= its percentile (a p95 SLO needs 95 %);
- e2e percentiles are over completed queries;
- utilization = time the engine was running steps / window; mean batch = time-weighted running
  sequences while busy; KV occupancy = time-weighted KV tokens in use / the engine's KV tokens
  while busy (peak: the largest seen at any step boundary).
"""

from __future__ import annotations

import io
import math
from pathlib import Path
from typing import Any

import numpy as np

from maestro_plan.simulate.engine import Simulator


def _r(x: float) -> float | None:
    if x is None or not math.isfinite(x):
        return None
    return float(f"{x:.6g}")


def _pct(a: np.ndarray, q: float) -> float | None:
    return _r(float(np.percentile(a, q))) if a.size else None


def build_report(sim: Simulator) -> dict[str, Any]:
    cfg = sim.config
    window_s = (sim.w1 - sim.w0) / 1000.0
    wfs: dict[str, Any] = {}
    classes: dict[str, dict[str, float]] = {}
    for wf in sim.workflows:
        st = sim.stats[wf.name]
        e2e = np.sort(np.asarray(st.e2e_ms, dtype=float))
        ok = int(np.searchsorted(e2e, wf.slo_ms, side="right"))
        att = ok / st.arrived if st.arrived else None
        wfs[wf.name] = {
            "priority": wf.priority,
            "slo_ms": _r(wf.slo_ms),
            "slo_percentile": _r(wf.slo_percentile),
            "arrived": st.arrived,
            "completed": st.completed,
            "failed": st.failed,
            "unfinished": st.arrived - st.completed - st.failed,
            "within_slo": ok,
            "slo_attainment": _r(att) if att is not None else None,
            "slo_met": bool(att is not None and att * 100.0 >= wf.slo_percentile - 1e-9),
            "throughput_qps": _r(st.completed / window_s),
            "e2e_ms": {
                "mean": _r(float(e2e.mean())) if e2e.size else None,
                "p50": _pct(e2e, 50),
                "p90": _pct(e2e, 90),
                "p95": _pct(e2e, 95),
                "p99": _pct(e2e, 99),
                "max": _r(float(e2e[-1])) if e2e.size else None,
            },
        }
        c = classes.setdefault(wf.priority, {"arrived": 0, "within_slo": 0})
        c["arrived"] += st.arrived
        c["within_slo"] += ok
    for c in classes.values():
        c["slo_attainment"] = _r(c["within_slo"] / c["arrived"]) if c["arrived"] else None
    window_ms = sim.w1 - sim.w0
    reps: dict[str, Any] = {}
    for e in sim.engines:
        busy = e.busy_ms
        reps[e.cfg.id] = {
            "model": e.cfg.model.id,
            "gpu_type": e.cfg.gpu.id,
            "tp": e.cfg.tp,
            "standby": e.cfg.standby,
            "kv_tokens": e.cfg.kv_tokens,
            "max_num_seqs": e.cfg.max_num_seqs,
            "utilization": _r(busy / window_ms),
            "mean_batch": _r(e.batch_area / busy) if busy > 0 else 0.0,
            "kv_occupancy_mean": _r(e.kv_area / busy / e.kv_cap) if busy > 0 and e.kv_cap else 0.0,
            "kv_occupancy_peak": _r(e.kv_peak / e.kv_cap) if e.kv_cap else 0.0,
            "mean_queue_ms": _r(e.wait_sum / e.served_window) if e.served_window else None,
            "mean_call_ms": _r(e.lat_sum / e.served_window) if e.served_window else None,
            "served_calls": e.served,
            "calls_per_s": _r(e.served_window / window_s),
            "output_tokens": e.tokens_out,
            "preemptions": e.preemptions,
            "truncated": e.truncated,
            "cold_starts": e.cold_starts,
        }
    in_flight = sim.in_flight()
    dropped = int(sum(sim.drops.values()))
    return {
        "config": {
            "duration_s": _r(cfg.duration_s),
            "seed": cfg.seed,
            "discipline": cfg.discipline,
            "rate_scale": _r(cfg.rate_scale),
            "warmup_s": _r(cfg.warmup_s),
            "drain_s": _r((sim.t_end - sim.w1) / 1000.0),
            "standby_idle_s": _r(cfg.standby_idle_s),
            "trace": Path(cfg.trace).name if cfg.trace else None,
        },
        "workflows": wfs,
        "classes": classes,
        "replicas": reps,
        "calls": {
            "issued": sim.calls_issued,
            "served": sim.calls_served,
            "dropped": dropped,
            "dropped_by_reason": dict(sorted(sim.drops.items())),
            "in_flight_at_end": in_flight,
            "conserved": sim.calls_issued == sim.calls_served + dropped + in_flight,
        },
        "queries": {"started": sim.queries_started, "completed": sim.queries_done},
        "simulated_until_s": _r(sim.now / 1000.0),
        "events": sim.events,
        "notes": list(sim.fleet.notes),
        "skipped_trace_rows": list(sim.arrivals.skipped_rows),
    }


def render(report: dict[str, Any], console: Any, *, max_replicas: int = 40) -> None:
    from rich.table import Table

    def say(text: str) -> None:
        console.print(text, soft_wrap=True, markup=False, highlight=False)

    from rich.console import Console

    # tables are wide: never truncate names on a narrow or piped console
    wide = Console(file=console.file, width=max(console.width, 150), highlight=False, no_color=console.no_color, force_terminal=console.is_terminal)

    cfg = report["config"]
    say(
        f"simulated {cfg['duration_s']} s of traffic (seed {cfg['seed']}, discipline {cfg['discipline']}, "
        f"rate x{cfg['rate_scale']}{', trace ' + cfg['trace'] if cfg['trace'] else ''}), drained up to {cfg['drain_s']} s"
    )
    t = Table(title="Workflows", title_justify="left")
    for col in ("workflow", "class", "SLO", "arrived", "done", "failed", "p50 ms", "p95 ms", "p99 ms", "attainment", "met", "q/s"):
        t.add_column(col, justify="left" if col in ("workflow", "class", "met") else "right")
    for name, w in sorted(report["workflows"].items()):
        e = w["e2e_ms"]
        att = w["slo_attainment"]
        t.add_row(
            name,
            w["priority"],
            f"p{w['slo_percentile']:g} {w['slo_ms'] / 1000:g} s",
            str(w["arrived"]),
            str(w["completed"]),
            str(w["failed"]),
            _fmt(e["p50"]),
            _fmt(e["p95"]),
            _fmt(e["p99"]),
            f"{att * 100:.1f}%" if att is not None else "-",
            "yes" if w["slo_met"] else "NO",
            f"{w['throughput_qps']:.3g}",
        )
    wide.print(t)
    cl = ", ".join(f"{k}: {v['slo_attainment'] * 100:.1f}% of {v['arrived']}" for k, v in sorted(report["classes"].items()) if v["slo_attainment"] is not None)
    if cl:
        say(f"SLO attainment by class: {cl}")
    r = Table(title="Replicas", title_justify="left")
    for col in ("replica", "util", "batch", "KV mean", "KV peak", "calls", "preempt", "cold"):
        r.add_column(col, justify="left" if col == "replica" else "right")
    reps = sorted(report["replicas"].items(), key=lambda kv: (-(kv[1]["utilization"] or 0), kv[0]))
    for rid, x in reps[:max_replicas]:
        r.add_row(
            rid,
            f"{(x['utilization'] or 0) * 100:.0f}%",
            f"{x['mean_batch']:.1f}",
            f"{(x['kv_occupancy_mean'] or 0) * 100:.0f}%",
            f"{(x['kv_occupancy_peak'] or 0) * 100:.0f}%",
            str(x["served_calls"]),
            str(x["preemptions"]),
            str(x["cold_starts"]),
        )
    wide.print(r)
    if len(reps) > max_replicas:
        say(f"... {len(reps) - max_replicas} more replicas (--json lists all)")
    c = report["calls"]
    say(
        f"calls: {c['issued']} issued, {c['served']} served, {c['dropped']} dropped"
        + (f" ({', '.join(f'{k} {v}' for k, v in c['dropped_by_reason'].items())})" if c["dropped"] else "")
        + f", {c['in_flight_at_end']} in flight at the end; accounting {'balances' if c['conserved'] else 'DOES NOT balance'}"
    )
    for n in report["notes"]:
        say(f"note: {n}")
    if report["skipped_trace_rows"]:
        say(f"skipped {len(report['skipped_trace_rows'])} malformed trace rows, first: {report['skipped_trace_rows'][0]}")


def _fmt(x: float | None) -> str:
    return "-" if x is None else f"{x:,.0f}"


def plot(sim: Simulator, report: dict[str, Any], path: str | Path) -> None:
    """Latency CDF per workflow (SLO marked) and per-replica utilization / KV occupancy."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from maestro_plan.atomic import write_bytes

    fig, (a1, a2) = plt.subplots(1, 2, figsize=(13, 5))
    for i, wf in enumerate(sim.workflows):
        e = np.sort(np.asarray(sim.stats[wf.name].e2e_ms)) / 1000.0
        color = f"C{i % 10}"
        if e.size:
            a1.plot(e, np.arange(1, e.size + 1) / max(sim.stats[wf.name].arrived, 1), color=color, label=f"{wf.name} ({wf.priority})")
        a1.axvline(wf.slo_ms / 1000.0, color=color, linestyle=":", linewidth=1)
    a1.set_xscale("log")
    a1.set_xlabel("end-to-end latency, s (dotted: SLO)")
    a1.set_ylabel("fraction of queries")
    a1.set_title("Workflow latency")
    a1.legend(fontsize=7)
    reps = sorted(report["replicas"].items(), key=lambda kv: -(kv[1]["utilization"] or 0))[:40]
    x = np.arange(len(reps))
    a2.bar(x - 0.2, [r["utilization"] or 0 for _, r in reps], width=0.4, label="utilization")
    a2.bar(x + 0.2, [r["kv_occupancy_mean"] or 0 for _, r in reps], width=0.4, label="KV occupancy (mean)")
    a2.set_xticks(x, [rid[:28] for rid, _ in reps], rotation=90, fontsize=6)
    a2.set_ylim(0, 1.05)
    a2.set_title("Replicas (busiest 40)")
    a2.legend(fontsize=7)
    fig.tight_layout()
    buf = io.BytesIO()
    fmt = Path(path).suffix.lstrip(".").lower() or "png"
    fig.savefig(buf, format=fmt if fmt in ("png", "svg", "pdf") else "png", dpi=110, metadata={"Software": None} if fmt == "png" else None)
    plt.close(fig)
    write_bytes(path, buf.getvalue())
