"""LiteLLM router configs: DIR/routing/litellm.yaml (one router for all traffic) and
DIR/routing/litellm-by-source/<source>.yaml (one router per source, e.g. per region).

One deployment per (model, cluster): the model's Service in that cluster, served through LiteLLM's
vLLM provider (`hosted_vllm/<served-model-name>`, api_base .../v1). Every deployment carries
`litellm_params.weight`: LiteLLM's simple-shuffle strategy looks at the FIRST deployment of a model
group to decide whether to pick by weight, rpm or tpm (litellm/router_strategy/simple_shuffle.py),
so a weight on every deployment makes it pick by the planned flows. Weights are integers: the
per-mille share of the group's planned requests/s (at least 1 for a deployment that gets traffic).
rpm and tpm are the deployment's planned capacity (requests/s x 60, and that x mean tokens per
request of the demand it serves), so LiteLLM's limits match what the engines were sized for.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

from maestro_plan.emit.common import BASE_PORT, endpoint_url, header_lines, standby_ref, to_yaml, write
from maestro_plan.load.schema import Inputs
from maestro_plan.plan.schema import Plan


def _mean_tokens(plan: Plan) -> dict[str, float]:
    """model -> mean input+output tokens per request, weighted by demand rate."""
    num: dict[str, float] = defaultdict(float)
    den: dict[str, float] = defaultdict(float)
    for d in plan.demand:
        num[d.model] += d.rate_rps * (d.mean_input_tokens + d.mean_output_tokens)
        den[d.model] += d.rate_rps
    return {m: num[m] / den[m] for m in num if den[m] > 0}


def _weights(rates: dict[str, float]) -> dict[str, int]:
    total = sum(rates.values())
    if total <= 0:
        return {k: 1 for k in rates}  # no planned traffic at all: equal split
    return {k: (max(1, round(1000 * v / total)) if v > 0 else 0) for k, v in rates.items()}


def build_litellm(plan: Plan, inputs: Inputs, source: str | None = None) -> dict[str, Any]:
    """The LiteLLM config for all sources (source=None) or for one source."""
    reps = {r.id: r for r in plan.replicas}
    standby_cluster = {standby_ref(s): s.cluster for s in plan.standby}
    tokens = _mean_tokens(plan)
    rate: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for rt in plan.routes:
        if source is not None and rt.source != source:
            continue
        cluster = reps[rt.replica].cluster if rt.replica in reps else standby_cluster.get(rt.replica)
        if cluster is not None:
            rate[rt.model][cluster] += rt.rate_rps
    cap: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for r in plan.replicas:
        cap[r.model][r.cluster] += r.capacity_rps
    models = sorted(rate) if source is not None else sorted(set(rate) | set(cap))
    model_list = []
    for m in models:
        clusters = sorted(set(rate.get(m, {})) | (set(cap.get(m, {})) if source is None else set()))
        weights = _weights({c: rate[m].get(c, 0.0) for c in clusters})
        for c in clusters:
            params: dict[str, Any] = {
                "model": f"hosted_vllm/{m}",
                "api_base": endpoint_url(m, c, BASE_PORT) + "/v1",
                "weight": weights[c],
            }
            capacity = cap[m].get(c, 0.0)
            if capacity > 0:
                rpm = max(1, int(capacity * 60))
                params["rpm"] = rpm
                if m in tokens:
                    params["tpm"] = max(1, int(capacity * 60 * tokens[m]))
            model_list.append(
                {
                    "model_name": m,
                    "litellm_params": params,
                    "model_info": {"id": f"{m}@{c}", "cluster": c, "planned_rps": round(rate[m].get(c, 0.0), 6)},
                }
            )
    return {
        "model_list": model_list,
        "router_settings": {"routing_strategy": "simple-shuffle", "num_retries": 2},
    }


def emit_litellm(plan: Plan, inputs: Inputs, out_dir: Path) -> list[Path]:
    head = header_lines(plan) + "\nLiteLLM router config (litellm --config this file, or Router(model_list=...))."
    written = [write(out_dir, "routing/litellm.yaml", to_yaml(build_litellm(plan, inputs), header=head))]
    for src in sorted({rt.source for rt in plan.routes}):
        cfg = build_litellm(plan, inputs, source=src)
        written.append(write(out_dir, f"routing/litellm-by-source/{src}.yaml", to_yaml(cfg, header=head + f"\nRoutes of source '{src}' only.")))
    return written
