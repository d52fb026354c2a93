"""Fit quality and KV savings: a dict for machines and rich tables for terminals."""

from __future__ import annotations

import math

from rich import box
from rich.console import Console
from rich.table import Table

from maestro_plan.fit.profile import WorkflowFit


def _r(x: float | None, nd: int = 1) -> float | None:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return None
    return round(float(x), nd)


def report_dict(fits: list[WorkflowFit], percentile: float) -> dict:
    out: dict = {"percentile": percentile, "workflows": {}}
    for f in fits:
        ev = f.evaluation
        kv = f.kv_tokens_per_query()
        roles = {}
        for r in f.roles:
            s = ev.roles.get(r.name) if ev else None
            per_call_aware = r.mean_input + r.reserve_aware
            roles[r.name] = {
                "model": r.model,
                "calls": r.calls,
                "calls_per_query": _r(r.calls_per_query, 4),
                "depends_on": r.depends_on,
                "input_p50": r.input["percentiles"][50],
                "input_p99": r.input["percentiles"][99],
                "output_p50": r.output["percentiles"][50],
                "output_p99": r.output["percentiles"][99],
                "reserve_output_role_aware": _r(r.reserve_aware),
                "reserve_output_role_agnostic": _r(r.reserve_base),
                "kv_tokens_per_call_role_aware": _r(per_call_aware),
                "kv_tokens_per_call_role_agnostic": _r(r.mean_input + r.reserve_base),
                "kv_tokens_per_call_max_context": r.context_len,
                "kv_saved_vs_max_context": _r(1 - per_call_aware / r.context_len, 4) if r.context_len else None,
                "heldout": None
                if s is None
                else {
                    "calls": s.n_test,
                    "pinball_role_aware": _r(s.aware_loss, 2),
                    "pinball_role_agnostic": _r(s.base_loss, 2),
                    "coverage_role_aware": _r(s.aware_coverage, 4),
                    "coverage_role_agnostic": _r(s.base_coverage, 4),
                    "mae_p50_role_aware": _r(s.aware_mae_p50, 2),
                    "mae_p50_role_agnostic": _r(s.base_mae_p50, 2),
                },
            }
        out["workflows"][f.name] = {
            "queries": f.queries,
            "calls": f.calls,
            "span_s": _r(f.span_s),
            "rate_per_s": float(f"{f.rate_per_s:.6g}"),
            "peak_to_mean": _r(f.peak_to_mean, 3),
            "arrivals": f.arrivals,
            "slo_ms": _r(f.slo_ms, 0),
            "slo_from": f.slo_from,
            "edges": [list(e) for e in f.edges],
            "notes": f.notes,
            "heldout": None
            if ev is None
            else {
                "train_calls": ev.n_train,
                "test_calls": ev.n_test,
                "pinball_role_aware": _r(ev.aware_loss, 2),
                "pinball_role_agnostic": _r(ev.base_loss, 2),
                "pinball_reduction": _r(ev.improvement, 4),
                "coverage_role_aware": _r(ev.aware_coverage, 4),
                "coverage_role_agnostic": _r(ev.base_coverage, 4),
                "mae_p50_role_aware": _r(ev.aware_mae_p50, 2),
                "mae_p50_role_agnostic": _r(ev.base_mae_p50, 2),
            },
            "kv_tokens_per_query": {k: _r(v) for k, v in kv.items()},
            "kv_saved_vs_max_context": _r(1 - kv["role_aware"] / kv["max_context"], 4) if kv["max_context"] else None,
            "kv_saved_vs_role_agnostic": _r(1 - kv["role_aware"] / kv["role_agnostic"], 4) if kv["role_agnostic"] else None,
            "roles": roles,
        }
    return out


def _pair(a: float | None, b: float | None, fmt: str = "{:.1f}") -> str:
    if a is None or b is None:
        return "-"
    mark = "[green]" if a < b else "[yellow]" if a > b else ""
    end = "[/]" if mark else ""
    return f"{mark}{fmt.format(a)}{end}/{fmt.format(b)}"


def print_report(fits: list[WorkflowFit], percentile: float, console: Console) -> None:
    rep = report_dict(fits, percentile)
    p = f"p{percentile:g}"
    for f in fits:
        w = rep["workflows"][f.name]
        head = Table(title=f"workflow {f.name}", show_header=False, title_justify="left")
        head.add_column("what")
        head.add_column("value")
        head.add_row("queries / calls", f"{f.queries} / {f.calls}")
        head.add_row("span of logs", f"{f.span_s:.0f} s" if f.span_s else "-")
        head.add_row("arrival rate", f"{f.rate_per_s:.4g} queries/s, peak/mean {f.peak_to_mean:.2f}")
        head.add_row("SLO", f"{f.slo_ms:.0f} ms ({f.slo_from})")
        head.add_row("calls per query", ", ".join(f"{r.name} {r.calls_per_query:.3g}" for r in f.roles))
        head.add_row("role DAG", ", ".join(f"{a} -> {b}" for a, b in f.edges) or "(no dependencies)")
        ev = w["heldout"]
        if ev:
            head.add_row(
                f"{p} output predictor",
                f"pinball {ev['pinball_role_aware']} role-aware vs {ev['pinball_role_agnostic']} role-agnostic "
                f"({ev['pinball_reduction']:.1%} lower), coverage {ev['coverage_role_aware']:.3f} vs {ev['coverage_role_agnostic']:.3f}, "
                f"{ev['test_calls']} held-out calls",
            )
        kv = w["kv_tokens_per_query"]
        saved = w["kv_saved_vs_max_context"]
        head.add_row(
            "KV tokens per query",
            f"{kv['role_aware']:.0f} role-aware, {kv['role_agnostic']:.0f} role-agnostic"
            + (f", {kv['max_context']:.0f} at max context ({saved:.1%} saved)" if kv["max_context"] else ""),
        )
        for n in f.notes:
            head.add_row("note", n)
        console.print(head)
        q = Table(title=f"{p} output predictor on held-out calls: role-aware / role-agnostic", title_justify="left", box=box.SIMPLE_HEAD)
        for col in ("role", "held-out", f"pinball {p}", "coverage", "MAE of p50"):
            q.add_column(col, justify="left" if col == "role" else "right", no_wrap=col == "role")
        t = Table(title=f"KV reservation per call of {f.name}: role-aware / role-agnostic", title_justify="left", box=box.SIMPLE_HEAD)
        for col in ("role", "model", "out p50|p99", f"reserve {p}", "KV tokens", "saved"):
            t.add_column(col, justify="left" if col in ("role", "model") else "right", no_wrap=col in ("role", "model"))
        for r in f.roles:
            d = w["roles"][r.name]
            h = d["heldout"] or {}
            q.add_row(
                r.name,
                str(h.get("calls", 0)),
                _pair(h.get("pinball_role_aware"), h.get("pinball_role_agnostic")),
                f"{h['coverage_role_aware']:.2f}/{h['coverage_role_agnostic']:.2f}" if h else "-",
                _pair(h.get("mae_p50_role_aware"), h.get("mae_p50_role_agnostic")),
            )
            t.add_row(
                r.name,
                r.model,
                f"{d['output_p50']:.0f}|{d['output_p99']:.0f}",
                _pair(d["reserve_output_role_aware"], d["reserve_output_role_agnostic"], "{:.0f}"),
                _pair(d["kv_tokens_per_call_role_aware"], d["kv_tokens_per_call_role_agnostic"], "{:.0f}"),
                f"{d['kv_saved_vs_max_context']:.1%}" if d["kv_saved_vs_max_context"] is not None else "-",
            )
        t.caption = "KV tokens: input + reserved output; saved: role-aware against reserving the model's max context per call"
        console.print(q)
        console.print(t)
