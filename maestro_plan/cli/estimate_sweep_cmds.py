"""Command: estimate-sweep (GPU type x TP x weight format x max_num_seqs for one model and request
shape: the Pareto front of throughput per GPU and per dollar against speed per user, and the
configuration the planner would pick). See maestro_plan/estimate/pareto.py."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from maestro_plan.cli.common import InventoryOpt, JsonOpt, ModelsOpt, console, emit_json, guarded, print_table
from maestro_plan.errors import InputError, unknown_name_hint
from maestro_plan.units import duration_text


def register(app: typer.Typer) -> None:
    @app.command("estimate-sweep")
    @guarded
    def estimate_sweep(
        model: Annotated[str, typer.Option("--model", help="Model id (models/<id>.yaml)")],
        gpus: Annotated[str | None, typer.Option("--gpus", help="GPU types to try, comma-separated (default: every known type)")] = None,
        prompt: Annotated[int, typer.Option("--prompt", min=1, help="Prompt tokens per request")] = 2048,
        output: Annotated[int, typer.Option("--output", min=1, help="Output tokens per request")] = 256,
        ttft_ms: Annotated[float | None, typer.Option("--ttft-ms", min=0.001, help="Time-to-first-token limit for the pick")] = None,
        tpot_ms: Annotated[float | None, typer.Option("--tpot-ms", min=0.001, help="Time-per-output-token limit for the pick")] = None,
        plot: Annotated[Path | None, typer.Option("--plot", help="Write the two Pareto plots to this PNG")] = None,
        models: ModelsOpt = None,
        inventory: InventoryOpt = None,
        json_out: JsonOpt = False,
    ) -> None:
        """Sweep GPU type x TP x weight format x max_num_seqs for one model; print the Pareto front and the pick.

        Throughput per GPU and per dollar against output tokens/s per user, with TTFT and TPOT, from
        the estimator. The pick: most tokens per dollar within --ttft-ms / --tpot-ms."""
        from maestro_plan import atomic
        from maestro_plan.estimate.pareto import pareto, pick, plot_png, sweep
        from maestro_plan.load.loader import default_paths, load_gpu_types, load_inventory, load_models

        mods, _ = load_models(models if models is not None else default_paths()["models"])
        if model not in mods:
            raise InputError(f"unknown model '{model}'.", field="--model", hint=unknown_name_hint(model, mods, "models"))
        table = load_gpu_types(list(load_inventory(inventory)[0].gpu_types) if inventory is not None else [])
        names = [g.strip() for g in gpus.split(",") if g.strip()] if gpus else sorted(table)
        bad = [g for g in names if g not in table]
        if bad:
            raise InputError(f"unknown GPU type '{bad[0]}'.", field="--gpus", hint=unknown_name_hint(bad[0], table, "GPU types"))
        m = mods[model]
        if prompt + output > m.context_len:
            raise InputError(f"--prompt {prompt} + --output {output} exceed the model's context of {m.context_len} tokens.", field="--prompt")
        points = sweep(m, {g: table[g] for g in names}, prompt=prompt, output=output)
        if not points:
            raise InputError(f"model '{model}' fits none of the GPU types tried at any of its TP degrees {m.tp_degrees}.", field="--gpus",
                             hint="try GPU types with more memory (maestro-plan gpus).")
        front = pareto(points)
        chosen = pick(points, ttft_ms=ttft_ms, tpot_ms=tpot_ms)
        if plot is not None:
            atomic.write_bytes(plot, plot_png(points, chosen, f"{model}: {prompt} in / {output} out tokens, {len(points)} configurations"))
        if json_out:
            emit_json({"model": model, "prompt": prompt, "output": output, "points": len(points), "pareto": [p.to_json() for p in front],
                       "pick": chosen.to_json() if chosen else None})
            return
        t = Table(title=escape(f"{model}: Pareto front of {len(points)} configurations ({prompt} in / {output} out)"))
        for col in ("GPU", "TP", "weights", "seqs", "tok/s/user", "tok/s/GPU", "tok/$", "TTFT", "TPOT"):
            t.add_column(col, justify="left" if col in ("GPU", "weights") else "right")
        for p in front:
            t.add_row(p.gpu, str(p.tp), p.weights, str(p.max_num_seqs), f"{p.tokens_per_s_user:,.1f}", f"{p.tokens_per_s_gpu:,.0f}",
                      f"{p.tokens_per_dollar:,.0f}", duration_text(p.ttft_ms), duration_text(p.tpot_ms))
        print_table(t, drop=("tok/$", "TTFT"))
        limits = ", ".join(x for x in (f"TTFT <= {duration_text(ttft_ms)}" if ttft_ms else "", f"TPOT <= {duration_text(tpot_ms)}" if tpot_ms else "") if x) or "no latency limit"
        if chosen is None:
            console.print(f"no configuration meets {limits}")
        else:
            console.print(f"planner's pick ({limits}): {chosen.gpu} TP{chosen.tp} {chosen.weights}, max_num_seqs {chosen.max_num_seqs}: "
                          f"{chosen.tokens_per_dollar:,.0f} tokens/$, {chosen.tokens_per_s_user:,.1f} tok/s/user, TTFT {duration_text(chosen.ttft_ms)}, "
                          f"TPOT {duration_text(chosen.tpot_ms)}", soft_wrap=True)
        if plot is not None:
            console.print(f"wrote {escape(str(plot))}")
