"""Human reports of a plan: a rich terminal summary, DIR/report.md and DIR/report.html with plots.

All three come from one data structure (`summary_data`, also the `--json` output), so they agree.
Plots are PNGs written with matplotlib's Agg backend into DIR/plots/ and referenced by relative
path (no network assets). Output is deterministic: no timestamps, PNG metadata without a Software
tag, fixed figure sizes and DPI, sorted rows.

Per workflow the SLO table shows the latency model's pXX and the simulated pXX and attainment the
plan records (plan.slo, written by maestro_plan.slo; a plan without them is priced by the model
here), and says "meets" only when both meet the target. The mean path (route-weighted mean call
time x calls per query along the longest path of the role DAG, worst source) is shown beside it
for reference: it is not a percentile.
"""

from __future__ import annotations

import html
import io
from collections import defaultdict
from graphlib import TopologicalSorter
from pathlib import Path
from typing import Any

from maestro_plan.emit.classes import slot_class_warnings
from maestro_plan.emit.common import engine_defaults, node_index, rnd, standby_ref, write
from maestro_plan.load.schema import Inputs
from maestro_plan.plan.schema import Plan
from maestro_plan.units import GIB, amount_text, duration_text

MEMORY_ROWS_PER_PAGE = 96
"""GPUs per memory-map image: every used GPU is drawn, on as many pages (memory-map.png,
memory-map-2.png, ...) as it takes; 96 rows keep a page under 33 inches at the 0.32-inch row pitch."""
OVERHEAD_GREY = "#9e9e9e"
"""Activation + non-torch overhead in the memory map; no model colour is grey (_colors)."""
MAX_REPLICA_ROWS = 200


# --------------------------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------------------------


def _role_call_ms(plan: Plan, source: str, model: str) -> float | None:
    reps = {r.id: r for r in plan.replicas}
    num = den = 0.0
    for rt in plan.routes:
        if rt.source != source or rt.model != model or rt.replica not in reps:
            continue
        pred = reps[rt.replica].predicted_latency_ms
        if pred is None or rt.fraction <= 0:
            continue
        num += rt.fraction * (pred + 2 * rt.network_latency_ms)
        den += rt.fraction
    return num / den if den > 0 else None


def _mean_paths(plan: Plan, inputs: Inputs, w: Any) -> tuple[float | None, str | None]:
    """Route-weighted mean call time x calls per query along the longest path, worst source."""
    worst: float | None = None
    worst_src = None
    unknown = False
    for a in sorted(w.arrivals, key=lambda a: a.source):
        dur: dict[str, float] = {}
        for r in w.roles:
            call = _role_call_ms(plan, a.source, r.model)
            if call is None:
                unknown = True
                call = 0.0
            dur[r.name] = call * r.calls_per_query
        finish: dict[str, float] = {}
        deps = {r.name: r.depends_on for r in w.roles}
        for name in TopologicalSorter({r.name: set(r.depends_on) for r in w.roles}).static_order():
            finish[name] = dur[name] + max((finish[d] for d in deps[name]), default=0.0)
        e2e = max(finish.values(), default=0.0)
        if worst is None or e2e > worst:
            worst, worst_src = e2e, a.source
    return (None if unknown else worst), worst_src


def _slo_records(plan: Plan, inputs: Inputs) -> dict[str, Any]:
    """The plan's SLO records (maestro_plan.slo); a plan written without them is priced by the
    latency model here (no simulation)."""
    if plan.slo:
        return {r.workflow: r for r in plan.slo}
    from maestro_plan.slo.loop import judge
    from maestro_plan.slo.model import plan_tails

    return {t.workflow: judge(t, None, 1, 1.0, 0.0) for t in plan_tails(plan, inputs)}


def slo_status(rec: Any) -> str:
    """meets only when the model's pXX and the simulated attainment both meet the target."""
    from maestro_plan.slo.verdict import of_record

    return "unknown" if rec is None else of_record(rec).status


def workflow_latency(plan: Plan, inputs: Inputs) -> list[dict[str, Any]]:
    """Per workflow: the SLO, the latency model's pXX, the simulated pXX and attainment, the mean
    path (route-weighted mean per call, the figure reports showed before), and the verdict."""
    recs = _slo_records(plan, inputs)
    out = []
    for w in sorted(inputs.workflows, key=lambda w: w.name):
        mean, worst_src = _mean_paths(plan, inputs, w)
        rec = recs.get(w.name)
        out.append(
            {
                "workflow": w.name,
                "priority": w.priority.value,
                "slo_ms": rnd(w.slo.latency_ms, 3),
                "slo_percentile": rnd(w.slo.percentile, 3),
                "predicted_ms": None if rec is None or rec.model_ms is None else rnd(rec.model_ms, 1),
                "sim_ms": None if rec is None or rec.sim_ms is None else rnd(rec.sim_ms, 1),
                "sim_attainment": None if rec is None else rec.sim_attainment,
                "sim_queries": 0 if rec is None else rec.sim_queries,
                "rounds": 1 if rec is None else rec.rounds,
                "mean_path_ms": None if mean is None else rnd(mean, 1),
                "worst_source": worst_src,
                "status": slo_status(rec),
            }
        )
    return out


def slo_cells(w: dict[str, Any]) -> list[str]:
    """One workflow's SLO row as text: SLO, model pXX, simulated pXX (attainment), mean path, verdict."""
    p = f"p{w['slo_percentile']:g}"  # durations in the unit a person reads them in ("p95 30 s", "p99 10 min")
    sim = "not simulated" if w["sim_attainment"] is None else (duration_text(w["sim_ms"]) if w["sim_ms"] is not None else "never") + f" ({100 * w['sim_attainment']:.1f}% of {w['sim_queries']})"
    return [
        f"{p} {duration_text(w['slo_ms'])}",
        "unbounded" if w["predicted_ms"] is None else duration_text(w["predicted_ms"]),
        sim,
        duration_text(w["mean_path_ms"]),
        w["status"],
    ]


SLO_COLUMNS = ["SLO", "model pXX", "simulated pXX (within SLO)", "mean path", "verdict"]
SLO_NOTE = (
    "Model pXX: the latency model at the SLO's percentile (lengths, calls, role graph, round trips, prefill and decode at "
    "the planned load, queueing for sequence slots; maestro_plan/estimate/latency.py). Simulated: a seeded simulation of "
    "this plan (solve --slo-check sim). Verdict 'meets' needs both; 'unverified' when the model meets but the plan was not simulated or "
    "too few queries reached the tail. Mean path: route-weighted mean per call along the longest path (not a percentile)."
)


def kv_summary(plan: Plan) -> dict[str, Any]:
    if plan.kv is not None:
        return {"predicted_bytes": plan.kv.predicted_bytes, "naive_bytes": plan.kv.naive_bytes, "saved_fraction": rnd(plan.kv.saved_fraction, 4), "source": "plan"}
    pred = naive = 0
    for r in plan.replicas:
        b = r.kv_cache_bytes_per_gpu * r.tp
        pred += b
        if r.kv_tokens > 0:
            naive += int(b / r.kv_tokens * r.max_model_len * r.max_num_seqs)
    saved = 1 - pred / naive if naive else 0.0
    return {"predicted_bytes": pred, "naive_bytes": naive, "saved_fraction": rnd(saved, 4), "source": "replicas"}


def summary_data(plan: Plan, inputs: Inputs) -> dict[str, Any]:
    """Everything the reports show, as plain JSON-able data (sorted, rounded)."""
    inventory: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for c in inputs.inventory.clusters:
        for p in c.node_pools:
            inventory[c.name][p.gpu_type] += p.node_count * p.gpus_per_node
    gpus = []
    for c in sorted(set(inventory) | set(plan.gpus_used)):
        for g in sorted(set(inventory.get(c, {})) | set(plan.gpus_used.get(c, {}))):
            used = plan.gpus_used.get(c, {}).get(g, 0)
            avail = inventory.get(c, {}).get(g, 0)
            gpus.append({"cluster": c, "gpu_type": g, "used": used, "available": avail, "utilization": rnd(used / avail, 4) if avail else 0.0})
    cost: dict[tuple[str, str], float] = defaultdict(float)
    for r in plan.replicas:
        cost[(r.cluster, r.gpu_type)] += r.price_per_hour
    models = []
    demand: dict[str, float] = defaultdict(float)
    served: dict[str, float] = defaultdict(float)
    for d in plan.demand:
        demand[d.model] += d.rate_rps
        served[d.model] += d.served_rps
    cap: dict[str, float] = defaultdict(float)
    load: dict[str, float] = defaultdict(float)
    nrep: dict[str, int] = defaultdict(int)
    for r in plan.replicas:
        cap[r.model] += r.capacity_rps
        load[r.model] += r.load_rps
        nrep[r.model] += 1
    standby_models = defaultdict(int)
    for s in plan.standby:
        standby_models[s.model] += 1
    for m in sorted(set(demand) | set(cap) | set(standby_models)):
        models.append(
            {
                "model": m,
                "replicas": nrep[m],
                "standby": standby_models[m],
                "demand_rps": rnd(demand[m], 4),
                "served_rps": rnd(served[m], 4),
                "capacity_rps": rnd(cap[m], 4),
                "load_rps": rnd(load[m], 4),
                "utilization": rnd(load[m] / cap[m], 4) if cap[m] > 0 else 0.0,
            }
        )
    eng = engine_defaults()
    return {
        "plan_id": plan.plan_id,
        "generator": plan.generator,
        "inventory": plan.inputs.inventory_name,
        "objective": plan.settings.objective,
        "solve": {
            "status": plan.solve.status,
            "objective": plan.solve.objective,
            "bound": plan.solve.bound,
            "gap": plan.solve.gap,
            "solver": plan.settings.solver,
        },
        "engine": f"{eng.name} {eng.version} ({eng.image})",
        "cost_per_hour": rnd(plan.cost_per_hour, 2),
        "cost_by_cluster": [
            {"cluster": c, "gpu_type": g, "cost_per_hour": rnd(v, 2)} for (c, g), v in sorted(cost.items())
        ],
        "gpus": gpus,
        "models": models,
        "workflows": workflow_latency(plan, inputs),
        "kv": kv_summary(plan),
        "binding": [b.model_dump(mode="json") for b in sorted(plan.binding, key=lambda b: (b.constraint, b.subject))],
        "replicas": len(plan.replicas),
        "standby": len(plan.standby),
        "notes": list(plan.notes),
    }


# --------------------------------------------------------------------------------------------
# Terminal
# --------------------------------------------------------------------------------------------


def _gib(b: float) -> str:
    return f"{b / GIB:,.1f} GiB"


def print_summary(plan: Plan, inputs: Inputs, console: Any = None) -> dict[str, Any]:
    """Print the plan summary as rich tables; returns the data printed."""
    from rich.console import Console
    from rich.table import Table

    con = console or Console()
    s = summary_data(plan, inputs)
    gap = s["solve"]["gap"]
    con.print(
        f"[bold]plan {s['plan_id'][:16]}[/]  inventory {s['inventory']}  cost [bold]${s['cost_per_hour']:,.2f}/h[/]  "
        f"{s['replicas']} replicas, {s['standby']} warm standby  solve {s['solve']['status']}"
        + (f" (gap {gap:.2%})" if gap is not None else "")
    )
    t = Table(title="GPUs by cluster and type")
    for col in ("cluster", "GPU type", "used", "available", "utilization"):
        t.add_column(col, justify="right" if col in ("used", "available", "utilization") else "left")
    for g in s["gpus"]:
        t.add_row(g["cluster"], g["gpu_type"], str(g["used"]), str(g["available"]), f"{g['utilization']:.0%}")
    con.print(t)
    t = Table(title="Capacity vs demand per model (requests/s)")
    for col in ("model", "replicas", "standby", "demand", "capacity", "load", "utilization"):
        t.add_column(col, justify="left" if col == "model" else "right")
    for m in s["models"]:
        t.add_row(m["model"], str(m["replicas"]), str(m["standby"]), f"{m['demand_rps']:.3g}", f"{m['capacity_rps']:.3g}", f"{m['load_rps']:.3g}", f"{m['utilization']:.0%}")
    con.print(t)
    t = Table(title="Percentile SLO per workflow")
    for col in ["workflow", "priority", *SLO_COLUMNS]:
        t.add_column(col)
    for w in s["workflows"]:
        style = {"meets": "green", "misses": "red"}.get(w["status"], "yellow")
        cells = slo_cells(w)
        t.add_row(w["workflow"], w["priority"], *cells[:-1], f"[{style}]{cells[-1]}[/]")
    con.print(t)
    kv = s["kv"]
    con.print(f"KV cache reserved {_gib(kv['predicted_bytes'])} vs naive {_gib(kv['naive_bytes'])} (max_model_len x max_num_seqs): {kv['saved_fraction']:.0%} saved")
    if s["binding"]:
        t = Table(title="Binding constraints")
        for col in ("constraint", "subject", "slack"):
            t.add_column(col)
        for b in s["binding"]:
            t.add_row(b["constraint"], b["subject"], amount_text(b["slack"], b["unit"]))
        con.print(t)
    return s


# --------------------------------------------------------------------------------------------
# Plots
# --------------------------------------------------------------------------------------------


def _figure(w: float, h: float) -> Any:
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    matplotlib.rcParams["svg.hashsalt"] = "maestro-plan"
    fig = Figure(figsize=(w, h), dpi=100)
    FigureCanvasAgg(fig)
    return fig


def _png(fig: Any) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, metadata={"Software": None})
    return buf.getvalue()


def _colors(keys: list[str]) -> dict[str, Any]:
    """One colour per distinct key, no two alike and none grey: tab20 (strong, then light hues) without its grey pair, then
    tab20b and tab20c without their grey block (54 colours), then evenly spaced hues."""
    import colorsys

    import matplotlib

    tab20 = matplotlib.colormaps["tab20"]
    palette = [tab20(i) for i in (*range(0, 20, 2), *range(1, 20, 2)) if i not in (14, 15)]  # strong hues first
    palette += [matplotlib.colormaps["tab20b"](i) for i in range(20)]
    palette += [matplotlib.colormaps["tab20c"](i) for i in range(16)]
    uniq = sorted(set(keys))
    extra = max(0, len(uniq) - len(palette))
    palette += [(*colorsys.hsv_to_rgb((0.618034 * k) % 1.0, 0.75, 0.85), 1.0) for k in range(extra)]
    return {m: palette[i] for i, m in enumerate(uniq)}


def memory_rows(plan: Plan, inputs: Inputs) -> list[tuple[str, str, int]]:
    """(cluster, node, GPU index) of every GPU a replica uses, node by node (idle GPUs are left out)."""
    nodes = node_index(inputs)
    used = {(r.cluster, n, g) for r in plan.replicas for n in [r.node, *r.worker_nodes] for g in r.gpu_indices if n in nodes}
    return sorted(used)


def plot_memory_pages(plan: Plan, inputs: Inputs) -> list[bytes]:
    """The memory map of every used GPU, MEMORY_ROWS_PER_PAGE GPUs per image (at least one image)."""
    rows = memory_rows(plan, inputs)
    colors = _colors([r.model for r in plan.replicas])
    pages = [rows[i:i + MEMORY_ROWS_PER_PAGE] for i in range(0, len(rows), MEMORY_ROWS_PER_PAGE)] or [[]]
    return [_memory_page(plan, inputs, page, colors, k + 1, len(pages)) for k, page in enumerate(pages)]


def plot_memory_map(plan: Plan, inputs: Inputs) -> tuple[bytes, bool]:
    """The first memory-map page, and whether there are more."""
    pages = plot_memory_pages(plan, inputs)
    return pages[0], len(pages) > 1


def _memory_page(plan: Plan, inputs: Inputs, rows: list[tuple[str, str, int]], colors: dict[str, Any], page: int, pages: int) -> bytes:
    """Horizontal stacked bars, one row per used GPU: each replica's weights (solid), KV reservation
    (hatched) and activation/non-torch overhead (grey), against the GPU's HBM (black tick). The
    legend sits outside the axes, so it covers no bar."""
    nodes = node_index(inputs)
    fig = _figure(13, max(2.5, 0.32 * len(rows) + 1.6))
    ax = fig.add_subplot(1, 1, 1)
    labels = [f"{c}/{n}/gpu{g}" for c, n, g in rows]
    bars = _memory_segments(plan, rows)
    seen_models = sorted({model for kind, model in bars if kind == "weights"})
    # one barh call per (kind, model): one call per segment took 2.9 s for the bundled plan's 66 GPUs
    for (kind, model), segs in sorted(bars.items(), key=lambda kv: (kv[0][0] != "weights", kv[0])):
        ys, widths, lefts = zip(*segs)
        ax.barh(list(ys), list(widths), left=list(lefts), color=OVERHEAD_GREY if kind == "overhead" else colors[model], hatch="//" if kind == "kv" else None,
                edgecolor="white", linewidth=0.5, label=model if kind == "weights" else None)
    for y, (_c, n, _g) in enumerate(rows):
        hbm = inputs.gpu_types[nodes[n].pool.gpu_type].hbm_gib
        ax.plot([hbm, hbm], [y - 0.45, y + 0.45], color="black", linewidth=1.2)
    ax.set_yticks(range(len(rows)))
    ax.set_yticklabels(labels, fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel("GiB per GPU (solid: weights, hatched: KV reservation, grey: activation + non-torch; black tick: HBM)")
    ax.set_title(f"GPU memory map: {len(rows)} used GPUs" + (f" (page {page} of {pages})" if pages > 1 else ""))
    if seen_models:
        handles, names = ax.get_legend_handles_labels()
        order = sorted(range(len(names)), key=lambda i: names[i])
        ax.legend([handles[i] for i in order], [names[i] for i in order], loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=7, borderaxespad=0)
    fig.tight_layout()
    return _png(fig)


def _memory_segments(plan: Plan, rows: list[tuple[str, str, int]]) -> dict[tuple[str, str], list[tuple[int, float, float]]]:
    """(kind, model) -> [(row, width GiB, left GiB)]: each used GPU's replicas in id order, each as
    weights, KV reservation and overhead side by side (kind "overhead" is one grey for all models)."""
    at = {(n, g): y for y, (_c, n, g) in enumerate(rows)}
    left = [0.0] * len(rows)
    out: dict[tuple[str, str], list[tuple[int, float, float]]] = {}
    for r in sorted(plan.replicas, key=lambda r: r.id):
        for y in sorted({at[(n, g)] for n in [r.node, *r.worker_nodes] for g in r.gpu_indices if (n, g) in at}):
            for kind, b in (("weights", r.weights_bytes_per_gpu), ("kv", r.kv_cache_bytes_per_gpu), ("overhead", r.overhead_bytes_per_gpu)):
                v = b / GIB
                if v > 0:
                    out.setdefault((kind, "" if kind == "overhead" else r.model), []).append((y, v, left[y]))
                    left[y] += v
    return out


def plot_cost(summary: dict[str, Any]) -> bytes:
    rows = summary["cost_by_cluster"]
    clusters = sorted({r["cluster"] for r in rows})
    types = sorted({r["gpu_type"] for r in rows})
    colors = _colors(types)
    fig = _figure(7, 4)
    ax = fig.add_subplot(1, 1, 1)
    bottom = [0.0] * len(clusters)
    for t in types:
        vals = [sum(r["cost_per_hour"] for r in rows if r["cluster"] == c and r["gpu_type"] == t) for c in clusters]
        ax.bar(clusters, vals, bottom=bottom, label=t, color=colors[t])
        bottom = [b + v for b, v in zip(bottom, vals)]
    ax.set_ylabel("USD per hour")
    ax.set_title(f"Cost by cluster (total ${summary['cost_per_hour']:,.2f}/h)")
    if types:
        ax.legend(fontsize=8)
    fig.tight_layout()
    return _png(fig)


def plot_capacity(summary: dict[str, Any]) -> bytes:
    """Demand, routed load and planned capacity per model on a log scale, so that a model serving
    0.1 req/s shows beside one serving 100."""
    ms = summary["models"]
    names = [m["model"] for m in ms]
    fig = _figure(max(6, 0.9 * len(names) + 2), 4.6)
    ax = fig.add_subplot(1, 1, 1)
    x = list(range(len(names)))
    w = 0.27
    ax.bar([i - w for i in x], [m["demand_rps"] for m in ms], w, label="demand", color="#d62728")
    ax.bar(x, [m["load_rps"] for m in ms], w, label="routed load", color="#ff7f0e")
    ax.bar([i + w for i in x], [m["capacity_rps"] for m in ms], w, label="planned capacity", color="#1f77b4")
    values = [v for m in ms for v in (m["demand_rps"], m["load_rps"], m["capacity_rps"]) if v and v > 0]
    if values:
        ax.set_yscale("log")
        ax.set_ylim(min(values) / 2, max(values) * 3)
    ax.set_xticks(x)
    ax.set_xticklabels(names, rotation=30, ha="right", fontsize=8)
    ax.set_ylabel("requests/s (log scale)")
    ax.set_title("Capacity vs demand per model")
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
    fig.tight_layout()
    return _png(fig)


# --------------------------------------------------------------------------------------------
# Markdown / HTML
# --------------------------------------------------------------------------------------------

Block = tuple  # ("h1"|"h2"|"p"|"ul"|"table"|"img", ...)


def _fmt(v: Any) -> str:
    if v is None:
        return "?"
    if isinstance(v, float):
        return f"{v:,.4g}" if abs(v) < 1e6 else f"{v:,.0f}"
    return str(v)


def memory_page_file(page: int) -> str:
    return "plots/memory-map.png" if page == 1 else f"plots/memory-map-{page}.png"


def memory_pages(plan: Plan, inputs: Inputs) -> int:
    return max(1, -(-len(memory_rows(plan, inputs)) // MEMORY_ROWS_PER_PAGE))


def report_blocks(plan: Plan, inputs: Inputs, s: dict[str, Any], memory_cut: bool) -> list[Block]:
    kv = s["kv"]
    gap = s["solve"]["gap"]
    blocks: list[Block] = [
        ("h1", f"Placement plan {s['plan_id'][:16]}"),
        ("p", f"Inventory {s['inventory']}; objective {s['objective']}; solver {s['solve']['solver']}, status {s['solve']['status']}"
              + (f", optimality gap {gap:.2%}" if gap is not None else "") + f". Engine: {s['engine']}. Generated by {s['generator']}."),
        ("table", ["cost per hour", "replicas", "warm standby", "KV reserved", "KV naive", "KV saved"],
         [[f"${s['cost_per_hour']:,.2f}", str(s["replicas"]), str(s["standby"]), _gib(kv["predicted_bytes"]), _gib(kv["naive_bytes"]), f"{kv['saved_fraction']:.0%}"]]),
        ("h2", "GPUs by cluster and type"),
        ("table", ["cluster", "GPU type", "used", "available", "utilization"],
         [[g["cluster"], g["gpu_type"], str(g["used"]), str(g["available"]), f"{g['utilization']:.0%}"] for g in s["gpus"]]),
        ("img", "plots/cost-by-cluster.png", "Cost by cluster"),
        ("h2", "Percentile SLO per workflow"),
        ("p", SLO_NOTE),
        ("table", ["workflow", "priority", *SLO_COLUMNS], [[w["workflow"], w["priority"], *slo_cells(w)] for w in s["workflows"]]),
        ("h2", "Capacity vs demand per model"),
        ("table", ["model", "replicas", "standby", "demand rps", "served rps", "capacity rps", "load rps", "utilization"],
         [[m["model"], str(m["replicas"]), str(m["standby"]), _fmt(m["demand_rps"]), _fmt(m["served_rps"]), _fmt(m["capacity_rps"]), _fmt(m["load_rps"]), f"{m['utilization']:.0%}"] for m in s["models"]]),
        ("img", "plots/capacity-vs-demand.png", "Capacity vs demand per model"),
        ("h2", "GPU memory map"),
        ("p", "Per GPU: each replica's weights, KV-cache reservation (--kv-cache-memory-bytes) and activation/non-torch overhead against the GPU's memory."
              + (f" Every used GPU is drawn, {MEMORY_ROWS_PER_PAGE} per image." if memory_cut else "")),
        *[("img", memory_page_file(k), "GPU memory map" + (f", page {k}" if k > 1 else "")) for k in range(1, memory_pages(plan, inputs) + 1)],
        ("h2", "KV cache reservation"),
        ("p", f"Reserved from predicted request lengths: {_gib(kv['predicted_bytes'])}; the naive reservation (max_model_len x max_num_seqs per replica) would be {_gib(kv['naive_bytes'])}: {kv['saved_fraction']:.0%} less HBM for KV."),
    ]
    blocks.append(("h2", "Binding constraints"))
    if s["binding"]:
        blocks.append(("table", ["constraint", "subject", "slack"], [[b["constraint"], b["subject"], amount_text(b["slack"], b["unit"])] for b in s["binding"]]))
    else:
        blocks.append(("p", "The plan records no binding constraints."))
    reps = sorted(plan.replicas, key=lambda r: (r.cluster, r.node, r.id))
    blocks.append(("h2", "Replicas"))
    rows = [
        [r.id, r.model, r.cluster, r.node, ",".join(map(str, r.gpu_indices)), str(r.tp), f"{r.memory_fraction:.3f}", _gib(r.kv_cache_bytes_per_gpu),
         str(r.max_num_seqs), _fmt(rnd(r.capacity_rps, 4)), _fmt(rnd(r.load_rps, 4)), r.priority]
        for r in reps[:MAX_REPLICA_ROWS]
    ]
    blocks.append(("table", ["replica", "model", "cluster", "node", "GPUs", "TP", "mem fraction", "KV/GPU", "max seqs", "capacity rps", "load rps", "priority"], rows))
    if len(reps) > MAX_REPLICA_ROWS:
        blocks.append(("p", f"{len(reps) - MAX_REPLICA_ROWS} more replicas are in plan.json."))
    if plan.standby:
        blocks.append(("h2", "Warm standby"))
        blocks.append(("table", ["model", "cluster", "node", "host DRAM", "cold start", "reason"],
                       [[x.model, x.cluster, x.node, _gib(x.host_dram_bytes), f"{x.cold_start_ms:,.0f} ms", x.reason] for x in sorted(plan.standby, key=standby_ref)]))
    warnings = slot_class_warnings(plan, inputs)
    if warnings:
        blocks.append(("h2", "Deployment warnings"))
        blocks.append(("ul", warnings))
    if s["notes"]:
        blocks.append(("h2", "Notes"))
        blocks.append(("ul", list(s["notes"])))
    return blocks


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_markdown(blocks: list[Block]) -> str:
    out: list[str] = []
    for b in blocks:
        kind = b[0]
        if kind == "h1":
            out.append(f"# {b[1]}\n")
        elif kind == "h2":
            out.append(f"## {b[1]}\n")
        elif kind == "p":
            out.append(f"{b[1]}\n")
        elif kind == "ul":
            out.append("".join(f"- {x}\n" for x in b[1]))
        elif kind == "img":
            out.append(f"![{b[2]}]({b[1]})\n")
        elif kind == "table":
            head, rows = b[1], b[2]
            lines = ["| " + " | ".join(_md_cell(h) for h in head) + " |", "|" + "|".join(" --- " for _ in head) + "|"]
            lines += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in rows]
            out.append("\n".join(lines) + "\n")
    return "\n".join(out)


_CSS = (
    "body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}"
    "table{border-collapse:collapse;margin:0.5em 0 1.5em}th,td{border:1px solid #ccc;padding:3px 8px;font-size:0.9em;text-align:left}"
    "th{background:#f0f0f0}img{max-width:100%;border:1px solid #eee}h1{font-size:1.6em}h2{margin-top:1.6em}"
)


def render_html(blocks: list[Block], title: str) -> str:
    e = html.escape
    out = ["<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">', f"<title>{e(title)}</title>", f"<style>{_CSS}</style>", "</head>", "<body>"]
    for b in blocks:
        kind = b[0]
        if kind in ("h1", "h2"):
            out.append(f"<{kind}>{e(b[1])}</{kind}>")
        elif kind == "p":
            out.append(f"<p>{e(b[1])}</p>")
        elif kind == "ul":
            out.append("<ul>" + "".join(f"<li>{e(x)}</li>" for x in b[1]) + "</ul>")
        elif kind == "img":
            out.append(f'<p><img src="{e(b[1])}" alt="{e(b[2])}"></p>')
        elif kind == "table":
            rows = "".join("<tr>" + "".join(f"<td>{e(c)}</td>" for c in row) + "</tr>\n" for row in b[2])
            out.append("<table>\n<tr>" + "".join(f"<th>{e(h)}</th>" for h in b[1]) + "</tr>\n" + rows + "</table>")
    out += ["</body>", "</html>"]
    return "\n".join(out) + "\n"


def emit_report(plan: Plan, inputs: Inputs, out_dir: Path) -> list[Path]:
    """Write DIR/report.md, DIR/report.html and DIR/plots/*.png."""
    s = summary_data(plan, inputs)
    pages = plot_memory_pages(plan, inputs)
    cut = len(pages) > 1
    written = [write(out_dir, memory_page_file(k + 1), png) for k, png in enumerate(pages)] + [
        write(out_dir, "plots/cost-by-cluster.png", plot_cost(s)),
        write(out_dir, "plots/capacity-vs-demand.png", plot_capacity(s)),
    ]
    blocks = report_blocks(plan, inputs, s, cut)
    written.append(write(out_dir, "report.md", render_markdown(blocks)))
    written.append(write(out_dir, "report.html", render_html(blocks, f"maestro-plan report {s['plan_id'][:16]}")))
    return written
