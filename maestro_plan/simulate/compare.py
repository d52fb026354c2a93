"""`maestro-plan compare`: maestro-plan's plan against baselines on the same fleet and traffic.

Rows (each simulated with the same seed, so every row sees the same queries and lengths):
- naive: what people deploy today: KV reserved as max_model_len x max_num_seqs (the solver with
  kv_reservation="naive"), no warm standby, every source's calls spread round-robin over all
  replicas of the model whatever the network latency, FIFO queues;
- edf / fifo: maestro-plan's plan with EDF (the paper's baseline) or FIFO queues;
- maestro-plan: the plan with the Maestro discipline;
- one idea switched off at a time, everything else as maestro-plan:
  predicted-length KV reservation (solver kv_reservation="naive"), warm standby (solver
  standby=False), latency-aware routing (each source's traffic spread over all the model's
  replicas in proportion to capacity, latency ignored), priority classes (Maestro queues without
  the interactive-first rule), co-location (only when the solver exposes a switch for it; the
  report says when it does not).

For each row: KV-reservation HBM (sum over replicas of KV bytes per GPU x GPUs), GPUs used, cost
per hour, and SLO attainment per class at low and high contention (arrival rates x `low` and x
`high`; the plan is sized for x1 with the solver's headroom).

The solver is used through its public entry point (maestro_plan.solve.planner.solve with
maestro_plan.solve.problem.SolveSettings), as maestro_plan.whatif does.
"""

from __future__ import annotations

import dataclasses
import json
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from maestro_plan.load.schema import Inputs
from maestro_plan.plan.schema import Plan, Route
from maestro_plan.simulate.engine import SimConfig, run_simulation
from maestro_plan.simulate.report import build_report
from maestro_plan.units import GIB

STANDBY_PREFIX = "standby:"
PAPER_KV_CUT = 0.672
PAPER_SLO_POINTS = 23.6
PAPER = (
    "Maestro paper: KV-reservation HBM cut by 67.2 % against max_model_len x max_num_seqs, and SLO "
    "attainment +23.6 points over EDF under high contention."
)


@dataclass
class Row:
    name: str
    what: str
    plan: Plan | None  # None: the solver found no plan with this idea switched off (see error)
    discipline: str
    class_priority: bool = True
    error: str = ""
    results: dict[str, dict[str, Any]] = field(default_factory=dict)  # contention -> summary
    slo: tuple[str, str] = ("", "")  # (status, text) at the low-contention run (slo_verdict)


def kv_hbm_bytes(plan: Plan) -> int:
    return int(sum(r.kv_cache_bytes_per_gpu * r.tp * (1 + len(r.worker_nodes)) for r in plan.replicas))


def gpus_used(plan: Plan) -> int:
    return int(sum(n for by_type in plan.gpus_used.values() for n in by_type.values()))


def _links(inputs: Inputs) -> tuple[dict[tuple[str, str], float], float]:
    lat: dict[tuple[str, str], float] = {}
    for link in inputs.inventory.links:
        lat[(link.a, link.b)] = lat[(link.b, link.a)] = float(link.latency_ms)
    return lat, max(lat.values(), default=0.0)


def spread_routes(plan: Plan, inputs: Inputs, *, equal: bool) -> Plan:
    """Latency-blind routing: every (source, model) with routes goes to all replicas of the model,
    equally (round-robin, equal=True) or in proportion to capacity; standby routes are kept."""
    lat, worst = _links(inputs)
    by_model: dict[str, list] = defaultdict(list)
    for r in plan.replicas:
        by_model[r.model].append(r)
    groups: dict[tuple[str, str], list[Route]] = defaultdict(list)
    for rt in plan.routes:
        groups[(rt.source, rt.model)].append(rt)
    routes: list[Route] = []
    for (src, model), rts in sorted(groups.items()):
        keep = [rt for rt in rts if rt.replica.startswith(STANDBY_PREFIX)]
        share = 1.0 - sum(rt.fraction for rt in keep)
        rate = sum(rt.rate_rps for rt in rts)
        reps = by_model.get(model, [])
        weights = [1.0 if equal else max(r.capacity_rps, 1e-9) for r in reps]
        total = sum(weights)
        routes.extend(keep)
        for r, w in zip(reps, weights):
            f = share * w / total
            routes.append(Route(source=src, model=model, replica=r.id, fraction=f, rate_rps=rate * f, network_latency_ms=lat.get((src, r.cluster), worst), priority=rts[0].priority))
    return plan.model_copy(update={"routes": routes})


def _solve(inputs: Inputs, base: Any, **changes: Any) -> Plan:
    from maestro_plan.solve.planner import solve

    plan, _ = solve(inputs, dataclasses.replace(base, **changes))
    return plan


def _try_solve(inputs: Inputs, base: Any, **changes: Any) -> tuple[Plan | None, str]:
    """A baseline's plan, or None and the solver's reason when there is none (a row, not a crash)."""
    from maestro_plan.errors import InfeasibleError

    try:
        return _solve(inputs, base, **changes), ""
    except InfeasibleError as e:
        return None, str(getattr(e, "summary", "") or e).splitlines()[0]


def solver_switches(base: Any) -> dict[str, tuple[str, Any]]:
    """Ideas the solver can switch off: idea -> (SolveSettings field, value that switches it off)."""
    names = {f.name for f in dataclasses.fields(base)}
    out: dict[str, tuple[str, Any]] = {}
    if "kv_reservation" in names:
        out["predicted-length KV reservation"] = ("kv_reservation", "naive")
    if "standby" in names:
        out["warm standby"] = ("standby", False)
    for f in ("colocation", "co_location", "allow_colocation", "allow_sharing"):
        if f in names:
            out["co-location"] = (f, False)
            break
    for f in ("latency_aware_routing", "latency_routing"):
        if f in names:
            out["latency-aware routing"] = (f, False)
            break
    if "service_classes" in names:
        out["per-demand service classes"] = ("service_classes", False)
    return out


def build_rows(inputs: Inputs, *, plan: Plan | None = None, settings: Any = None, log: Callable[[str], None] = lambda s: None) -> tuple[list[Row], list[str]]:
    from maestro_plan.solve.problem import SolveSettings

    base = settings if settings is not None else SolveSettings()
    notes: list[str] = []
    if plan is None:
        from maestro_plan.slo import solve_checked

        log("solving maestro-plan's plan (with the percentile-SLO loop, as solve does)")
        plan, _ = solve_checked(inputs, base, mode="sim", allow_miss=True)
    switches = solver_switches(base)
    rows = [
        Row("maestro-plan", "the plan, Maestro queues", plan, "maestro"),
        Row("edf", "the plan, EDF queues (the paper's baseline)", plan, "edf"),
        Row("fifo", "the plan, FIFO queues", plan, "fifo"),
    ]
    naive_changes = dict(sw for sw in (switches.get(i) for i in ("predicted-length KV reservation", "warm standby", "co-location")) if sw is not None)
    log("solving the naive baseline")
    naive, err = _try_solve(inputs, base, **naive_changes)
    what = "max_model_len x max_num_seqs KV, no standby" + (", no co-location" if "co-location" in switches else "") + ", round-robin ignoring latency, FIFO"
    rows.insert(0, Row("naive", what, spread_routes(naive, inputs, equal=True) if naive is not None else None, "fifo", error=err))
    if "co-location" not in switches:
        notes.append("the solver has no switch for co-location: the naive baseline may still co-locate small models, and there is no co-location ablation row")
    for idea, (fname, value) in sorted(switches.items()):
        log(f"solving without {idea}")
        p, err = _try_solve(inputs, base, **{fname: value})
        rows.append(Row(f"no {idea}", f"solver {fname}={value!r}, Maestro queues", p, "maestro", error=err))
    if "latency-aware routing" not in switches:
        rows.append(Row("no latency-aware routing", "the plan's replicas, traffic spread by capacity ignoring latency, Maestro queues", spread_routes(plan, inputs, equal=False), "maestro"))
    rows.append(Row("no priority classes", "the plan, Maestro queues without interactive-first", plan, "maestro", class_priority=False))
    prio = {w.name: w.priority.value for w in inputs.workflows}
    shared = [r.id for r in plan.replicas if len({prio.get(x.split("/")[0]) for x in r.roles} - {None}) > 1]
    if not shared:
        notes.append("no replica of maestro-plan's plan serves both interactive and batch workflows, so the interactive-first rule never applies and 'no priority classes' equals maestro-plan")
    return rows, notes


def summarize(report: dict[str, Any]) -> dict[str, Any]:
    cls = {k: v["slo_attainment"] for k, v in report["classes"].items()}
    arrived = sum(w["arrived"] for w in report["workflows"].values())
    within = sum(w["within_slo"] for w in report["workflows"].values())
    return {
        "slo_attainment": cls,
        "slo_attainment_all": round(within / arrived, 6) if arrived else None,
        "workflows": {
            k: {"slo_attainment": w["slo_attainment"], "arrived": w["arrived"], "p95_ms": w["e2e_ms"]["p95"], "failed": w["failed"]} for k, w in sorted(report["workflows"].items())
        },
        "dropped_calls": report["calls"]["dropped"],
        "preemptions": sum(r["preemptions"] for r in report["replicas"].values()),
        "cold_starts": sum(r["cold_starts"] for r in report["replicas"].values()),
    }


def slo_verdict(row: Row, inputs: Inputs, planned: bool) -> tuple[str, str]:
    """The row's percentile-SLO verdict at the low-contention run (slo.verdict: meets only when the
    latency model's pXX and the simulated attainment both meet every workflow's target). The model
    prices the planned load: at other rates there is no model figure and the verdict is at most
    'unverified'."""
    from maestro_plan.slo.model import plan_tails
    from maestro_plan.slo.verdict import summary, verdict

    assert row.plan is not None
    model = {t.workflow: t.predicted_ms for t in plan_tails(row.plan, inputs)} if planned else {}
    sims = row.results["low"]["workflows"]
    out = []
    for w in sorted(inputs.workflows, key=lambda w: w.name):
        sim = sims.get(w.name, {})
        att, n = sim.get("slo_attainment"), int(sim.get("arrived", 0))
        out.append(verdict(w.name, float(w.slo.percentile), float(w.slo.latency_ms), model.get(w.name), att, n, priced=planned))
    return summary(out)


def run_compare(
    inputs: Inputs,
    *,
    plan: Plan | None = None,
    settings: Any = None,
    duration_s: float = 600.0,
    seed: int = 0,
    low: float = 1.0,
    high: float = 2.0,
    log: Callable[[str], None] = lambda s: None,
) -> dict[str, Any]:
    rows, notes = build_rows(inputs, plan=plan, settings=settings, log=log)
    contention = {"low": low, "high": high}
    for row in rows:
        if row.plan is None:
            continue
        for level, scale in contention.items():
            log(f"simulating {row.name} at {level} contention (rates x{scale:g})")
            cfg = SimConfig(duration_s=duration_s, seed=seed, discipline=row.discipline, rate_scale=scale, class_priority=row.class_priority)  # type: ignore[arg-type]
            row.results[level] = summarize(build_report(run_simulation(row.plan, inputs, cfg)))
        row.slo = slo_verdict(row, inputs, planned=low == 1.0)
    by = {r.name: r for r in rows}
    ours, naive, edf = by["maestro-plan"], by["naive"], by["edf"]

    def pts(level: str, key: str) -> float | None:
        a = ours.results[level]["slo_attainment"].get(key) if key != "all" else ours.results[level]["slo_attainment_all"]
        b = edf.results[level]["slo_attainment"].get(key) if key != "all" else edf.results[level]["slo_attainment_all"]
        return round((a - b) * 100.0, 2) if a is not None and b is not None else None

    assert ours.plan is not None
    kv_ours = kv_hbm_bytes(ours.plan)
    kv_naive = kv_hbm_bytes(naive.plan) if naive.plan is not None else 0
    headline = {
        "kv_hbm_cut_vs_naive_plan": round(1.0 - kv_ours / kv_naive, 4) if kv_naive else None,
        "kv_hbm_cut_same_replicas": ours.plan.kv.saved_fraction if ours.plan.kv else None,
        "slo_points_over_edf_high": {k: pts("high", k) for k in ("interactive", "batch", "all")},
        "slo_points_over_edf_low": {k: pts("low", k) for k in ("interactive", "batch", "all")},
        "paper": {"kv_hbm_cut": PAPER_KV_CUT, "slo_points_over_edf_high": PAPER_SLO_POINTS},
    }
    return {
        "config": {"duration_s": duration_s, "seed": seed, "contention": contention, "workflows": sorted(w.name for w in inputs.workflows), "inventory": inputs.inventory.name},
        "rows": [
            {
                "name": r.name,
                "what": r.what,
                "discipline": r.discipline,
                "feasible": r.plan is not None,
                "error": r.error,
                "kv_hbm_bytes": kv_hbm_bytes(r.plan) if r.plan is not None else None,
                "gpus": gpus_used(r.plan) if r.plan is not None else None,
                "cost_per_hour": round(r.plan.cost_per_hour, 4) if r.plan is not None else None,
                "replicas": len(r.plan.replicas) if r.plan is not None else None,
                "standby": len(r.plan.standby) if r.plan is not None else None,
                "results": r.results,
                "slo": r.slo[0] or None,
                "slo_detail": r.slo[1] or None,
            }
            for r in rows
        ],
        "headline": headline,
        "notes": notes,
    }


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{x * 100:.1f}%"


def table_rows(result: dict[str, Any]) -> list[list[str]]:
    out = []
    for r in result["rows"]:
        if not r["feasible"]:
            out.append([r["name"], "infeasible", "-", "-", "-", "-", "-", "-", "-"])
            continue
        lo, hi = r["results"]["low"], r["results"]["high"]
        out.append(
            [
                r["name"],
                f"{r['kv_hbm_bytes'] / GIB:,.0f}",
                str(r["gpus"]),
                f"{r['cost_per_hour']:,.0f}",
                _pct(lo["slo_attainment"].get("interactive")),
                _pct(lo["slo_attainment"].get("batch")),
                _pct(hi["slo_attainment"].get("interactive")),
                _pct(hi["slo_attainment"].get("batch")),
                r.get("slo") or "-",
            ]
        )
    return out


HEADERS = ["row", "KV HBM GiB", "GPUs", "$/h", "interactive (low)", "batch (low)", "interactive (high)", "batch (high)", "percentile SLOs (low)"]


def headline_lines(result: dict[str, Any]) -> list[str]:
    h = result["headline"]
    c = result["config"]["contention"]
    hi = h["slo_points_over_edf_high"]
    if h["kv_hbm_cut_vs_naive_plan"] is None:
        kv = f"KV-reservation HBM: the naive baseline has no plan; maestro-plan reserves {_pct(h['kv_hbm_cut_same_replicas'])} less than max_model_len x max_num_seqs on the same replicas; paper: 67.2 %."
    else:
        kv = ""
    lines = [
        kv or f"KV-reservation HBM: maestro-plan reserves {_pct(h['kv_hbm_cut_vs_naive_plan'])} less than the naive baseline's plan "
        f"({_pct(h['kv_hbm_cut_same_replicas'])} less than max_model_len x max_num_seqs on the same replicas); paper: 67.2 %.",
        f"SLO attainment over EDF at high contention (rates x{c['high']:g}): interactive {hi['interactive']:+.1f} points, "
        f"batch {hi['batch']:+.1f}, all queries {hi['all']:+.1f}; paper: +23.6 points." if None not in hi.values() else "SLO attainment over EDF: n/a",
    ]
    return lines


def to_markdown(result: dict[str, Any], command: str) -> str:
    c = result["config"]
    lines = [
        "# maestro-plan against baselines (simulated)",
        "",
        f"Generated by `{command}`. Fleet `{c['inventory']}`, workflows {', '.join(c['workflows'])}; "
        f"{c['duration_s']:g} s of Poisson traffic per run, seed {c['seed']}; low contention = rates x{c['contention']['low']:g} "
        f"(the planned load), high = x{c['contention']['high']:g}. SLO attainment = queries within their workflow's SLO latency / queries arrived.",
        "",
        "| " + " | ".join(HEADERS) + " |",
        "|" + "---|" * len(HEADERS),
    ]
    lines += ["| " + " | ".join(r) + " |" for r in table_rows(result)]
    lines += ["", "Rows:", ""]
    lines += [
        f"- **{r['name']}**: {r['what']}." + (f" No plan: {r['error']}" if not r["feasible"] else f" Percentile SLOs: {r['slo_detail']}.")
        for r in result["rows"]
    ]
    lines += ["", "## Against the paper's claims", ""]
    lines += [f"- {s}" for s in headline_lines(result)]
    for n in result["notes"]:
        lines.append(f"- Note: {n}.")
    return "\n".join(lines) + "\n"


def write_results(result: dict[str, Any], out_dir: str | Path, command: str) -> list[Path]:
    from maestro_plan.atomic import write_text

    out = Path(out_dir)
    j, m = out / "compare.json", out / "compare.md"
    write_text(j, json.dumps(result, indent=2, sort_keys=True) + "\n")
    write_text(m, to_markdown(result, command))
    return [j, m]
