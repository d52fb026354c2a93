"""Commands: whatif (scenarios against one base), sweep (grids, in parallel), diff, rollout.

    maestro-plan whatif --scale 2 --remove-cluster us-west --add-gpus eu-west:l40s:64
    maestro-plan whatif --scenario scenarios.yaml
    maestro-plan sweep --demand 0.5:3:0.25 --out out/sweep [--executor ray]
    maestro-plan sweep --fail cluster --out out/failures
    maestro-plan diff OLD.json NEW.json [--json]
    maestro-plan rollout OLD.json NEW.json --out DIR   (DIR/rollout.json, plan.txt, per-step manifest bundles)

Bad scenario edits (unknown names, factors <= 0, contradictions) exit 2 before anything is solved.
A scenario the fleet cannot serve is a row of the table (feasible: no, with the reason).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from maestro_plan.cli.common import (
    InventoryOpt,
    JsonOpt,
    ModelsOpt,
    WorkloadsOpt,
    apply_commands,
    console,
    emit_json,
    err_console,
    guarded,
    print_table,
)

CLI_ORIGIN = "command line"

SolverOpt = Annotated[str | None, typer.Option("--solver", help="cpsat | highs | cbc | greedy (default: the base plan's, else cpsat)")]
TimeLimitOpt = Annotated[float | None, typer.Option("--time-limit", help="Work budget per scenario, seconds (default: the base plan's, else solve's 30)")]
SeedOpt = Annotated[int | None, typer.Option("--seed", help="Solver random seed (default: the base plan's, else 0)")]
RebaseOpt = Annotated[bool, typer.Option("--rebase", help="When --base is stale (the inputs changed since it was solved), re-solve it from the current inputs instead of refusing it")]
ChangeWeightOpt = Annotated[
    float, typer.Option("--change-weight", help="Penalty on change against the base plan (0: the base plan only warm-starts and pins placements)")
]
BaseOpt = Annotated[Path | None, typer.Option("--base", help="Base plan.json (default: solve the base inputs first)")]
JobsOpt = Annotated[int, typer.Option("--jobs", "-j", help="Scenarios solved at once (local processes or Ray tasks)")]


def _check_flags(solver: str | None, time_limit: float | None, change_weight: float) -> None:
    from maestro_plan.errors import InputError
    from maestro_plan.solve.backends import SOLVER_NAMES

    if solver is not None and solver not in SOLVER_NAMES:
        raise InputError(f"unknown solver '{solver}'.", field="--solver", hint=f"use one of {', '.join(SOLVER_NAMES)}.")
    if time_limit is not None and not time_limit > 0:
        raise InputError(f"time limit {time_limit:g} must be > 0 seconds.", field="--time-limit")
    if change_weight < 0:
        raise InputError(f"change weight {change_weight:g} must be >= 0.", field="--change-weight")


def _pair(text: str, flag: str, sep: str = "=") -> tuple[str, str]:
    from maestro_plan.errors import InputError

    if sep not in text:
        raise InputError(f"cannot read '{text}'.", field=flag, hint=f"write NAME{sep}VALUE.")
    a, b = text.split(sep, 1)
    return a.strip(), b.strip()


def _number(text: str, flag: str) -> float:
    from maestro_plan.errors import InputError

    try:
        return float(text)
    except ValueError:
        raise InputError(f"'{text}' is not a number.", field=flag) from None


def _factor_or_value(text: str, flag: str, value_key: str) -> dict[str, float]:
    """'x0.7' -> {factor: 0.7}; '2.5' -> {value_key: 2.5}."""
    t = text.strip()
    if t[:1] in ("x", "*"):
        return {"factor": _number(t[1:], flag)}
    return {value_key: _number(t, flag)}


def _gpus_arg(text: str, flag: str) -> dict[str, Any]:
    from maestro_plan.errors import InputError

    parts = text.split(":")
    if len(parts) not in (3, 4):
        raise InputError(f"cannot read '{text}'.", field=flag, hint="write CLUSTER:GPU_TYPE:COUNT[:GPUS_PER_NODE], e.g. eu-west:l40s:64.")
    d: dict[str, Any] = {"cluster": parts[0], "gpu_type": parts[1], "count": parts[2]}
    if len(parts) == 4:
        d["gpus_per_node"] = parts[3]
    return d


def flags_scenario(
    name: str,
    scale: float | None,
    scale_workflow: list[str],
    scale_source: list[str],
    remove_cluster: list[str],
    remove_zone: list[str],
    remove_pool: list[str],
    remove_node: list[str],
    add_gpus: list[str],
    remove_gpus: list[str],
    price: list[str],
    slo: list[str],
    add_model: list[Path],
    add_workflow: list[Path],
) -> Any | None:
    """The scenario the edit flags describe (None when no edit flag is given)."""
    from maestro_plan.whatif.scenario import resolve_files, scenario_from_dict

    edits: list[dict[str, Any]] = []
    if scale is not None:
        edits.append({"scale_demand": {"factor": scale}})
    for t in scale_workflow:
        w, f = _pair(t, "--scale-workflow")
        edits.append({"scale_demand": {"factor": _number(f, "--scale-workflow"), "workflow": w}})
    for t in scale_source:
        s, f = _pair(t, "--scale-source")
        edits.append({"scale_demand": {"factor": _number(f, "--scale-source"), "source": s}})
    edits += [{"remove": {"cluster": c}} for c in remove_cluster]
    edits += [{"remove": {"zone": z}} for z in remove_zone]
    edits += [{"remove": {"node_pool": p}} for p in remove_pool]
    if remove_node:
        edits.append({"remove": {"nodes": list(remove_node)}})
    edits += [{"add_gpus": _gpus_arg(t, "--add-gpus")} for t in add_gpus]
    edits += [{"remove_gpus": _gpus_arg(t, "--remove-gpus")} for t in remove_gpus]
    for t in price:
        k, v = _pair(t, "--price")
        gpu, _, cluster = k.partition("@")
        e: dict[str, Any] = {"gpu_type": gpu, **_factor_or_value(v, "--price", "price_per_gpu_hour")}
        if cluster:
            e["cluster"] = cluster
        edits.append({"price": e})
    for t in slo:
        k, v = _pair(t, "--slo")
        e = _factor_or_value(v, "--slo", "latency_ms")
        if k not in ("all", "*"):
            e["workflow"] = k
        edits.append({"slo": e})
    edits += [{"add_model": {"file": str(p)}} for p in add_model]
    edits += [{"add_workflow": {"file": str(p)}} for p in add_workflow]
    if not edits:
        return None
    sc = scenario_from_dict({"name": name, "description": "from command-line flags", "edits": edits}, CLI_ORIGIN)
    return resolve_files(sc, Path.cwd(), CLI_ORIGIN)


def base_and_settings(base: Path | None, inputs: Any, *, solver: str | None, time_limit: float | None, seed: int | None,
                      change_weight: float, rebase: bool) -> tuple[Any, Any]:
    """The base plan and the settings every scenario is solved with.

    A --base made from other inputs (whatif/stale.py: the verifier's input digests) is refused
    (exit 2), or with --rebase re-solved with its own settings. Scenarios use the base plan's
    recorded settings (flags given on top), so an edit-free scenario reproduces the base plan."""
    from maestro_plan.errors import InfeasibleError
    from maestro_plan.plan.io import read_plan
    from maestro_plan.whatif.stale import require_current, stale_reasons
    from maestro_plan.whatif.sweep import settings_like, solve_inputs

    _check_flags(solver, time_limit, change_weight)
    plan = read_plan(base) if base is not None else None
    settings = settings_like(plan, solver=solver, time_limit_s=time_limit, seed=seed, change_weight=change_weight)
    if plan is not None:
        if not rebase:
            require_current(plan, inputs, base)
            return plan, settings
        reasons = stale_reasons(plan, inputs)
        if not reasons:
            return plan, settings
        err_console.print(f"[yellow]note:[/] {escape(str(base))} is stale ({escape(reasons[0])}); re-solving the base from the current inputs")
    with err_console.status("solving the base inputs"):
        try:
            return solve_inputs(inputs, settings, slo_check=plan.settings.slo_check if plan is not None else "sim"), settings
        except InfeasibleError as e:
            e.summary = "the base inputs (no edits) have no feasible plan, so there is nothing to compare against: " + e.summary
            raise


def _money(x: float | None) -> str:
    return "" if x is None else f"{x:,.2f}"


DROP = ("GPUs by type",)
"""Columns left out first when a result table does not fit the terminal (print_table)."""
WRAP = ("GPUs by type", "SLO", "changes vs base", "edits / why not")
"""Free-text columns, wrapped at spaces (ids and numbers in them stay whole)."""


def _result_table(rows: list[dict[str, Any]], title: str) -> Table:
    t = Table(title=escape(title), show_lines=False)
    for col, just in (("scenario", "left"), ("feasible", "left"), ("$/h", "right"), ("Δ $/h", "right"), ("GPUs", "right"),
                      ("GPUs by type", "left"), ("SLO", "left"), ("changes vs base", "left"), ("edits / why not", "left")):
        t.add_column(col, justify=just)  # type: ignore[arg-type]
    for r in rows:
        ch = r.get("changes") or {}
        changes = f"+{ch.get('added', 0)} -{ch.get('removed', 0)} ~{ch.get('moved', 0)} moved" if ch else ""
        if ch.get("resized"):
            changes += f", {ch['resized']} resized"
        types = ", ".join(f"{v}×{k}" for k, v in r.get("gpus_by_type", {}).items())
        slo = f"[red]{escape(r.get('slo_detail') or '')}[/]" if r.get("slo") == "misses" else escape(r.get("slo") or "")
        why = r["edits"] if r["feasible"] else f"[red]{escape(r['reason'][:300])}[/]"
        feas = "yes" if r["feasible"] else f"[red]no[/] ({r['status']})"
        delta = r.get("cost_delta_per_hour")
        t.add_row(escape(r["scenario"]), feas, _money(r.get("cost_per_hour")), "" if delta is None else f"{delta:+,.2f}", str(r.get("gpus") or ""),
                  escape(types), slo, changes, why if not r["feasible"] else escape(why))
    return t


def _plan_folders(names: list[str]) -> dict[str, str]:
    """A folder name per scenario: the name with characters other than letters, digits, '.', '_'
    and '-' replaced by '_' (and a numeric suffix where two names would then collide)."""
    import re

    out: dict[str, str] = {}
    taken: set[str] = set()
    for n in names:
        base = re.sub(r"[^A-Za-z0-9._-]", "_", n).strip(".") or "scenario"
        f, k = base, 1
        while f in taken:
            k += 1
            f = f"{base}-{k}"
        taken.add(f)
        out[n] = f
    return out


def verified_plans(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Scenario name -> its plan, for rows whose plan passed the verifier (only those are written)."""
    out = {}
    for r in rows:
        pl = r.pop("_plan", None)
        if pl is not None and r.get("verified"):
            out[r["scenario"]] = pl
    return out


def write_scenario_folders(stage: Path, inputs: Any, scenarios: list[Any], plans: dict[str, Any], base_plan: Any, *, emit: bool) -> None:
    """base/ and scenarios/NAME/ under `stage`, each the folder `maestro-plan solve` writes (plan.json,
    manifests, routing, report; the solve command's own writer), from the scenario's edited inputs."""
    from maestro_plan.cli.solve_cmds import write_plan_folder
    from maestro_plan.whatif.apply import apply_scenario
    from maestro_plan.whatif.scenario import BASE

    (stage / BASE.name).mkdir()
    write_plan_folder(stage / BASE.name, base_plan, inputs, {}, emit)
    by_name = {s.name: s for s in scenarios}
    for name, folder in _plan_folders(sorted(plans)).items():
        d = stage / "scenarios" / folder
        d.mkdir(parents=True)
        write_plan_folder(d, plans[name], apply_scenario(inputs, by_name[name], validate=False), {}, emit)


def next_steps(out: Path | None, plans: dict[str, Any], scenarios: list[Any]) -> None:
    """The commands that take a what-if study further (diff, rollout, kubectl apply), one per line
    and never wrapped (a command must stay copyable)."""
    lines = []
    if out is None:
        lines.append("next: add --out DIR to keep each scenario's plan, manifests and report")
    else:
        folders = _plan_folders(sorted(plans))
        first = next((folders[s.name] for s in scenarios if s.name in folders), None)
        lines.append(f"wrote {out}: base/ and scenarios/NAME/, each the folder `solve` writes")
        if first is not None:
            new = out / "scenarios" / first
            lines += [f"next: maestro-plan diff {out / 'base'} {new}", f"      maestro-plan rollout {out / 'base'} {new} --out {new / 'rollout.json'}"]
            lines += [f"      {c}" for c in apply_commands(new)]
    for line in lines:
        console.print(escape(line), soft_wrap=True)


def sweep_grid(inputs: Any, demand: str | None, workflow: str | None, source: str | None, fail: str | None, price: str | None,
               scenarios_file: Path | None) -> tuple[str, list[Any], str]:
    """(parameter, scenarios, origin) of a sweep: the product of the axes given (demand first, the
    swept value), or the scenarios of a file."""
    from maestro_plan.errors import InputError
    from maestro_plan.whatif.scenario import load_scenarios
    from maestro_plan.whatif.sweep import demand_grid, failure_grid, parse_range, price_grid, product_grid

    if (workflow or source) and demand is None:
        raise InputError("--workflow and --source go with --demand.", field="--workflow/--source")
    axes, names = [], []
    if demand is not None:
        axes.append(demand_grid(parse_range(demand, "--demand"), workflow, source))
        names.append(f"demand factor ({'/'.join(x for x in (workflow, source) if x) or 'all'})")
    if price is not None:
        gpu, rng = _pair(price, "--price")
        axes.append(price_grid(gpu, parse_range(rng, "--price")))
        names.append(f"{gpu} price factor")
    if fail is not None:
        axes.append(failure_grid(inputs, fail))
        names.append(f"{fail} failure")
    if scenarios_file is not None:
        if axes:
            raise InputError("--scenarios runs the scenarios of a file; it does not combine with a grid.", field="--scenarios",
                             hint="give --scenarios alone, or --demand/--price/--fail (combinable).")
        return "scenario", load_scenarios(scenarios_file), str(scenarios_file)
    if not axes:
        raise InputError("no grid given.", field="--demand/--fail/--price/--scenarios", hint="e.g. --demand 0.5:3:0.25, --fail cluster, or both.")
    n = 1
    for a in axes:
        n *= len(a)
    if n > 10_000:
        raise InputError(f"the grid has {n} scenarios; at most 10000.", field="--demand/--fail/--price", hint="use fewer values per axis.")
    return " x ".join(names), product_grid(axes), CLI_ORIGIN


def _require_current(plan: Any, plan_file: Path, inventory: Path | None, models: Path | None, workloads: Path | None) -> None:
    """Exit 2 when `plan` was made from other inputs than these (whatif/stale.py)."""
    from maestro_plan.load.loader import load_inputs
    from maestro_plan.whatif.stale import require_current

    require_current(plan, load_inputs(inventory, models, workloads), plan_file, hint="re-solve it from the current inputs ('maestro-plan solve'), or pass the inputs it was made from.",
                     check_table=False)


def register(app: typer.Typer) -> None:
    @app.command("whatif")
    @guarded
    def whatif_cmd(
        inventory: InventoryOpt = None,
        models: ModelsOpt = None,
        workloads: WorkloadsOpt = None,
        scenario: Annotated[list[Path] | None, typer.Option("--scenario", "-s", help="Scenario file (YAML/JSON; one scenario or 'scenarios:' list)")] = None,
        name: Annotated[str, typer.Option("--name", help="Name of the scenario the edit flags describe")] = "whatif",
        scale: Annotated[float | None, typer.Option("--scale", help="Scale every arrival rate by this factor")] = None,
        scale_workflow: Annotated[list[str] | None, typer.Option("--scale-workflow", help="WORKFLOW=FACTOR (repeatable)")] = None,
        scale_source: Annotated[list[str] | None, typer.Option("--scale-source", help="SOURCE=FACTOR (repeatable)")] = None,
        remove_cluster: Annotated[list[str] | None, typer.Option("--remove-cluster", help="Cluster to take out (repeatable)")] = None,
        remove_zone: Annotated[list[str] | None, typer.Option("--remove-zone", help="Zone to take out (repeatable)")] = None,
        remove_pool: Annotated[list[str] | None, typer.Option("--remove-pool", help="Node pool to take out (repeatable)")] = None,
        remove_node: Annotated[list[str] | None, typer.Option("--remove-node", help="Node to take out (repeatable)")] = None,
        add_gpus: Annotated[list[str] | None, typer.Option("--add-gpus", help="CLUSTER:TYPE:COUNT[:GPUS_PER_NODE] (repeatable)")] = None,
        remove_gpus: Annotated[list[str] | None, typer.Option("--remove-gpus", help="CLUSTER:TYPE:COUNT (repeatable)")] = None,
        price: Annotated[list[str] | None, typer.Option("--price", help="TYPE[@CLUSTER]=USD or TYPE[@CLUSTER]=xFACTOR (repeatable)")] = None,
        slo: Annotated[list[str] | None, typer.Option("--slo", help="WORKFLOW=MS or WORKFLOW=xFACTOR; 'all' for every workflow (repeatable)")] = None,
        add_model: Annotated[list[Path] | None, typer.Option("--add-model", help="Model file to add to the catalogue (repeatable)")] = None,
        add_workflow: Annotated[list[Path] | None, typer.Option("--add-workflow", help="Workflow file to add (repeatable)")] = None,
        base: BaseOpt = None,
        rebase: RebaseOpt = False,
        solver: SolverOpt = None,
        time_limit: TimeLimitOpt = None,
        seed: SeedOpt = None,
        change_weight: ChangeWeightOpt = 0.0,
        jobs: JobsOpt = 2,
        out: Annotated[Path | None, typer.Option("--out", "-o", help="Folder for whatif.json, base/ and scenarios/NAME/, each the folder `solve` writes (written whole or not at all)")] = None,
        emit: Annotated[bool, typer.Option("--emit/--no-emit", help="With --out: manifests, routing and report beside each plan.json")] = True,
        json_out: JsonOpt = False,
    ) -> None:
        """Solve scenarios (edits of the inputs) against the same base; print cost, GPUs, SLO margin, changes.

        Exit codes: 0 done (infeasible scenarios are rows of the table), 2 bad input or bad edits
        (nothing is solved), 3 the base inputs themselves are infeasible.
        """
        import json

        from maestro_plan import atomic
        from maestro_plan.errors import InputError
        from maestro_plan.load.loader import load_inputs
        from maestro_plan.whatif.scenario import load_scenarios
        from maestro_plan.whatif.sweep import result_row, run_sweep, sweep_document, validate_all

        inputs = load_inputs(inventory, models, workloads)
        scenarios = []
        for f in scenario or []:
            scenarios += load_scenarios(f)
        flag_sc = flags_scenario(name, scale, scale_workflow or [], scale_source or [], remove_cluster or [], remove_zone or [], remove_pool or [],
                                 remove_node or [], add_gpus or [], remove_gpus or [], price or [], slo or [], add_model or [], add_workflow or [])
        if flag_sc is not None:
            scenarios.append(flag_sc)
        if not scenarios:
            raise InputError("no scenario given.", field="--scenario", hint="pass edit flags (e.g. --scale 2, --remove-cluster us-west) or --scenario FILE.")
        validate_all(inputs, scenarios, origin=", ".join(map(str, scenario or [])) or CLI_ORIGIN)  # before any solve
        base_plan, settings = base_and_settings(base, inputs, solver=solver, time_limit=time_limit, seed=seed, change_weight=change_weight, rebase=rebase)
        with err_console.status(f"solving {len(scenarios)} scenario(s)"):
            run = run_sweep(inputs, scenarios, base_plan, settings, jobs=jobs, validate=False, keep_plans=out is not None)
        from maestro_plan.whatif.scenario import BASE

        plans = verified_plans(run.rows)
        rows = [result_row(-1, BASE, base_plan, base_plan) | {"index": "base"}] + run.rows
        doc = sweep_document(run.rows, base=base_plan, parameter="scenario", inputs=inputs)
        if out is not None:
            with atomic.staged_dir(out) as st:
                (st / "whatif.json").write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n", encoding="utf-8")
                write_scenario_folders(st, inputs, scenarios, plans, base_plan, emit=emit)
        if json_out:
            emit_json(doc)
            return
        print_table(_result_table(rows, f"what-if against base ${base_plan.cost_per_hour:,.2f}/h"), drop=DROP, wrap=WRAP)
        next_steps(out, plans, scenarios)

    @app.command("sweep")
    @guarded
    def sweep_cmd(
        out: Annotated[Path, typer.Option("--out", "-o", help="Folder for sweep.csv, sweep.json, sweep.png, base/ and scenarios/NAME/")],
        inventory: InventoryOpt = None,
        models: ModelsOpt = None,
        workloads: WorkloadsOpt = None,
        demand: Annotated[str | None, typer.Option("--demand", help="Demand factors START:STOP:STEP or a list (0.5,1,2)")] = None,
        workflow: Annotated[str | None, typer.Option("--workflow", help="With --demand: scale this workflow only")] = None,
        source: Annotated[str | None, typer.Option("--source", help="With --demand: scale this source only")] = None,
        fail: Annotated[str | None, typer.Option("--fail", help="Each single failure: cluster | zone | node-pool")] = None,
        price: Annotated[str | None, typer.Option("--price", help="GPU price factors: TYPE=START:STOP:STEP")] = None,
        scenarios_file: Annotated[Path | None, typer.Option("--scenarios", help="Run the scenarios of this file (alone, not with a grid)")] = None,
        bisect_steps: Annotated[int, typer.Option("--bisect", min=0, max=20, help="With --demand: halve the bracket where the fleet runs out this many times (one solve each)")] = 0,
        executor: Annotated[str, typer.Option("--executor", help="local (processes on this machine) | ray")] = "local",
        ray_address: Annotated[str | None, typer.Option("--ray-address", help="Ray cluster address (default: start a local Ray)")] = None,
        jobs: JobsOpt = 2,
        base: BaseOpt = None,
        rebase: RebaseOpt = False,
        solver: SolverOpt = None,
        time_limit: TimeLimitOpt = None,
        seed: SeedOpt = None,
        change_weight: ChangeWeightOpt = 0.0,
        plot: Annotated[bool, typer.Option("--plot/--no-plot", help="Write sweep.png")] = True,
        plans: Annotated[bool, typer.Option("--plans/--no-plans", help="Write base/ and scenarios/NAME/, each the folder `solve` writes")] = True,
        emit: Annotated[bool, typer.Option("--emit/--no-emit", help="With --plans: manifests, routing and report beside each plan.json")] = True,
        json_out: JsonOpt = False,
    ) -> None:
        """Run a grid of scenarios in parallel; write sweep.csv, sweep.json, a plot and a plan folder per scenario.

        Axes combine: --demand 1:3:0.5 --fail cluster solves every demand factor with every single
        cluster failure. Exit codes: 0 done (infeasible scenarios are rows), 2 bad input (nothing
        solved) or a stale --base, 3 the base inputs are infeasible.
        """
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        from maestro_plan.errors import InputError
        from maestro_plan.load.loader import load_inputs
        from maestro_plan.whatif.sweep import (
            bisect,
            bracket_text,
            brackets,
            run_sweep,
            sweep_document,
            validate_all,
            write_outputs,
        )

        if bisect_steps and demand is None:
            raise InputError("--bisect needs a --demand axis.", field="--bisect")
        if executor not in ("local", "ray"):
            raise InputError(f"unknown executor '{executor}'.", field="--executor", hint="use local or ray.")
        if jobs < 1:
            raise InputError(f"--jobs {jobs} must be at least 1.", field="--jobs")
        if out.exists() and not out.is_dir():
            raise InputError("exists and is not a folder.", file=out, field="--out", hint="name a folder (it is created when missing).")
        inputs = load_inputs(inventory, models, workloads)
        parameter, scenarios, origin = sweep_grid(inputs, demand, workflow, source, fail, price, scenarios_file)
        validate_all(inputs, scenarios, origin=origin)  # every edit checked before any solve
        base_plan, settings = base_and_settings(base, inputs, solver=solver, time_limit=time_limit, seed=seed, change_weight=change_weight, rebase=rebase)
        with Progress(TextColumn("sweep"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), TextColumn("{task.description}"),
                      console=err_console, transient=True) as bar:
            task = bar.add_task("", total=len(scenarios))

            def tick(i: int, row: dict[str, Any]) -> None:
                bar.update(task, advance=1, description=escape(f"{row['scenario']}: {'ok' if row['feasible'] else 'infeasible'}"))

            run = run_sweep(inputs, scenarios, base_plan, settings, executor=executor, jobs=jobs, ray_address=ray_address, progress=tick,
                            validate=False, keep_plans=plans)
            if bisect_steps:
                bar.update(task, total=len(scenarios) + bisect_steps * max(1, len(brackets(run.rows))))
                run.rows += bisect(inputs, scenarios, run.rows, base_plan, settings, bisect_steps, progress=tick)
        kept = verified_plans(run.rows)
        from maestro_plan.whatif.sweep import with_factor

        every = scenarios + [with_factor(next(s for s in scenarios if s.group == r["group"]), r["value"]) for r in run.rows[len(scenarios):]]

        def folders(stage: Path) -> None:
            if plans:
                write_scenario_folders(stage, inputs, every, kept, base_plan, emit=emit)

        written = write_outputs(out, run.rows, base=base_plan, parameter=parameter, inputs=inputs, plot=plot, extra=folders)
        if json_out:
            emit_json(sweep_document(run.rows, base=base_plan, parameter=parameter, inputs=inputs))
            return
        print_table(_result_table(run.rows, f"sweep over {parameter} (base ${base_plan.cost_per_hour:,.2f}/h)"), drop=DROP, wrap=WRAP)
        for b in brackets(run.rows):
            console.print(escape(bracket_text(b, parameter)))
        console.print(f"wrote {', '.join(escape(str(p)) for p in written)}")
        next_steps(out if plans else None, kept, every)

    @app.command("diff")
    @guarded
    def diff_cmd(
        old: Annotated[Path, typer.Argument(help="The plan in force (plan.json or its folder)")],
        new: Annotated[Path, typer.Argument(help="The new plan")],
        inventory: Annotated[Path | None, typer.Option("--inventory", "-i", help="With -m/-w: refuse an OLD plan made from other inputs (stale)")] = None,
        models: Annotated[Path | None, typer.Option("--models", "-m", help="Model catalogue OLD must have been made from")] = None,
        workloads: Annotated[Path | None, typer.Option("--workloads", "-w", help="Workloads OLD must have been made from")] = None,
        json_out: JsonOpt = False,
    ) -> None:
        """What changes from OLD to NEW: + added, - removed, ~ moved or resized replicas, and the cost delta.

        With any of --inventory/--models/--workloads, OLD is first checked against those inputs (a
        stale plan exits 2)."""
        from maestro_plan.plan.io import read_plan
        from maestro_plan.whatif.diff import diff_plans

        p_old = read_plan(old)
        if inventory or models or workloads:
            _require_current(p_old, old, inventory, models, workloads)
        d = diff_plans(p_old, read_plan(new))
        if json_out:
            emit_json(d.to_json())
            return
        for c in d.changes:  # one line per change, never wrapped (grep-able in CI logs and pipes)
            color = {"+": "green", "-": "red", "~": "yellow"}[c.op]
            console.print(f"[{color}]{escape(c.text())}[/]", soft_wrap=True)
        if d.changes:
            console.print("")
        for cl, types in d.gpus_delta.items():
            console.print(f"  GPUs {escape(cl)}: " + ", ".join(f"{escape(t)} {n:+d}" for t, n in types.items()), soft_wrap=True)
        console.print(escape(d.summary()))
        if d.changes:
            console.print(escape(f"next: maestro-plan rollout {old} {new} --out rollout.json"), soft_wrap=True)

    @app.command("rollout")
    @guarded
    def rollout_cmd(
        old: Annotated[Path, typer.Argument(help="The plan in force (plan.json or its folder)")],
        new: Annotated[Path, typer.Argument(help="The plan to roll out")],
        out: Annotated[Path | None, typer.Option("--out", "-o", help="Folder for rollout.json, plan.txt and per-step manifest bundles (emitted from the plans' inputs, -i -m -w); a name ending in .json: that file only")] = None,
        inventory: Annotated[Path | None, typer.Option("--inventory", "-i", help="Inventory the plans were made from: its spare GPUs may stage replicas (default: only GPUs the plans use)")] = None,
        models: Annotated[Path | None, typer.Option("--models", "-m", help="With -w: refuse an OLD plan made from other inputs (stale)")] = None,
        workloads: Annotated[Path | None, typer.Option("--workloads", "-w", help="With -m: refuse an OLD plan made from other inputs (stale)")] = None,
        json_out: JsonOpt = False,
    ) -> None:
        """Ordered rollout from OLD to NEW that never drops capacity below demand.

        Add before remove, drain before delete, cluster by cluster, with capacity at each step.
        Exit codes: 0 a safe order exists, 1 blocked (the reason is printed and written), 2 bad input.
        """
        import json

        from maestro_plan import atomic
        from maestro_plan.errors import InputError
        from maestro_plan.load.loader import load_inventory
        from maestro_plan.plan.io import read_plan
        from maestro_plan.whatif.rollout import plan_rollout

        p_old, p_new = read_plan(old), read_plan(new)
        if models or workloads:
            _require_current(p_old, old, inventory, models, workloads)
        inv = load_inventory(inventory)[0] if inventory is not None else None
        if inv is not None and inv.name not in (p_old.inputs.inventory_name, p_new.inputs.inventory_name):
            raise InputError(
                f"inventory '{inv.name}' is not the one the plans were made from ('{p_old.inputs.inventory_name}').",
                file=inventory, field="--inventory", hint="pass the inventory the plans were solved with, or leave --inventory out.",
            )
        r = plan_rollout(p_old, p_new, inv, old_name=str(old), new_name=str(new))
        doc = json.dumps(r.model_dump(mode="json"), indent=2, sort_keys=True) + "\n"
        steps_txt: list[str] = []
        if out is not None and out.suffix == ".json":
            atomic.write_text(out, doc)
        elif out is not None:
            steps_txt = _write_rollout_folder(p_old, p_new, r, doc, out, (inventory, models, workloads))
        if json_out:
            emit_json(r.model_dump(mode="json"))
        else:
            console.print(escape(r.render()), soft_wrap=True)
            if out is not None:
                console.print(f"wrote {escape(str(out))}")
            final = apply_commands(new if new.is_dir() else new.parent)
            if steps_txt:
                console.print(f"next: take the steps in order ({escape(str(out / 'plan.txt'))}):", soft_wrap=True)
                for line in (x for x in steps_txt if x.startswith("kubectl")):
                    console.print(f"      {escape(line)}", soft_wrap=True)
            elif r.status == "ok" and final:
                console.print("next: take the steps in order; NEW's manifests, once every step is done:", soft_wrap=True)
                for line in final:
                    console.print(f"      {escape(line)}", soft_wrap=True)
        if r.status != "ok":
            raise typer.Exit(1)


def _write_rollout_folder(old: Any, new: Any, r: Any, doc: str, out: Path, flags: tuple[Path | None, ...]) -> list[str]:
    """DIR/rollout.json, and with the inputs (-i -m -w) DIR/plan.txt and the per-step manifest
    bundles (whatif/bundles.py). Written atomically as one folder. Returns plan.txt's lines."""
    from maestro_plan.atomic import staged_dir
    from maestro_plan.errors import InputError

    if out.exists() and not out.is_dir():
        raise InputError("exists and is not a folder.", file=out, field="--out", hint="name a folder, or a file ending in .json for rollout.json only.")
    from maestro_plan.emit.common import check_plan_matches
    from maestro_plan.load.loader import load_inputs

    inputs = load_inputs(*flags)  # flags left out: the bundled folders, as every command
    try:
        for name, plan in (("OLD", old), ("NEW", new)):
            check_plan_matches(plan, inputs, name)
    except InputError:
        if any(f is not None for f in flags):
            raise  # inputs named on purpose that do not fit the plans: bad input
        inputs = None  # plans made from other inputs than the bundled ones
    lines: list[str] = []
    with staged_dir(out) as stage:
        (stage / "rollout.json").write_text(doc)
        if inputs is not None:
            from maestro_plan.whatif.bundles import write_bundles

            lines = write_bundles(old, new, inputs, r, stage, out)
            (stage / "plan.txt").write_text("\n".join(lines) + "\n")
    if inputs is None:
        console.print("note: the plans do not fit the bundled inputs: pass the --inventory, --models and --workloads they were made "
                      "from to write the per-step manifest bundles too", soft_wrap=True)
    return lines
