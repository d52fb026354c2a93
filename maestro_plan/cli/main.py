"""The maestro-plan command line. Each command group lives in its own module with a
`register(app)` function, listed in COMMAND_MODULES (add yours there)."""

from __future__ import annotations

import importlib

import typer

from maestro_plan import __version__

app = typer.Typer(
    name="maestro-plan",
    help="Offline placement optimizer for fleets of LLMs serving multi-agent systems.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)

COMMAND_MODULES = [
    "maestro_plan.cli.inputs_cmds",  # validate, models, gpus, schema
    "maestro_plan.cli.import_cmds",  # import model | import inventory
    "maestro_plan.cli.solve_cmds",  # solve
    "maestro_plan.cli.verify_cmds",  # verify, synth
    "maestro_plan.cli.fit_cmds",  # fit (workload profiles from call logs)
    "maestro_plan.cli.estimate_cmds",  # estimate, demand
    "maestro_plan.cli.estimate_sweep_cmds",  # estimate-sweep (Pareto front over GPU x TP x format x max_num_seqs)
    "maestro_plan.cli.emit_cmds",  # emit, summary
    "maestro_plan.cli.simulate_cmds",  # simulate, compare
    "maestro_plan.cli.whatif_cmds",  # whatif, sweep, diff, rollout
]


def _version(value: bool) -> None:
    if value:
        typer.echo(f"maestro-plan {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version and exit"),
) -> None:
    """Plan multi-model LLM placement: load -> estimate -> solve -> plan -> emit."""


for _mod in COMMAND_MODULES:
    importlib.import_module(_mod).register(app)


def main() -> None:
    from maestro_plan.deadline import process_is_command

    process_is_command()  # --time-limit counts from the process's start (maestro_plan/deadline.py)
    app()


if __name__ == "__main__":
    main()
