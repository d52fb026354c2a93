"""Shared CLI pieces: the three input flags, error handling, consoles."""

from __future__ import annotations

import functools
import math
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import click
import typer
from pydantic import ValidationError
from rich.console import Console
from rich.markup import escape

from maestro_plan.errors import EXIT_BAD_INPUT, OUTPUT_ERRNOS, InfeasibleError, InputError, MaestroError, output_error_text

console = Console(highlight=False, soft_wrap=False)
err_console = Console(stderr=True, highlight=False, soft_wrap=True)

InventoryOpt = Annotated[Path | None, typer.Option("--inventory", "-i", help="Inventory file or folder (default: ./inventories)")]
ModelsOpt = Annotated[Path | None, typer.Option("--models", "-m", help="Model catalogue folder or file (default: ./models)")]
WorkloadsOpt = Annotated[Path | None, typer.Option("--workloads", "-w", help="Workloads folder or file (default: ./workloads)")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON instead of tables")]

F = TypeVar("F", bound=Callable[..., Any])


def guarded(fn: F) -> F:
    """Run a command; turn MaestroError into a message and its exit code, never a traceback."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            check_options(kwargs)
            return fn(*args, **kwargs)
        except typer.Exit:
            raise
        except ValidationError as e:  # a model built from an option's value (e.g. a name)
            err_console.print(f"[bold red]error:[/] {escape(_validation_text(e))}", markup=True, highlight=False)
            raise typer.Exit(EXIT_BAD_INPUT) from None
        except OSError as e:
            if e.errno not in OUTPUT_ERRNOS:
                raise
            err_console.print(f"[bold red]error:[/] {escape(output_error_text(e))}", markup=True, highlight=False)
            raise typer.Exit(EXIT_BAD_INPUT) from None
        except InputError as e:
            err_console.print(f"[bold red]error:[/] {escape(e.render())}", markup=True, highlight=False)
            raise typer.Exit(e.exit_code) from None
        except InfeasibleError as e:
            err_console.print(f"[bold red]infeasible:[/] {escape(e.render())}", markup=True, highlight=False)
            raise typer.Exit(e.exit_code) from None
        except MaestroError as e:
            err_console.print(f"[bold red]error:[/] {escape(str(e))}")
            raise typer.Exit(e.exit_code) from None
        except KeyboardInterrupt:
            err_console.print("interrupted; nothing was written.")
            raise typer.Exit(130) from None
        except Exception as e:  # an internal bug: short message, traceback on request
            if os.environ.get("MAESTRO_PLAN_DEBUG"):
                raise
            err_console.print(
                f"[bold red]internal error:[/] {type(e).__name__}: {escape(str(e))}\n"
                "This is a bug in maestro-plan, not in your input. Set MAESTRO_PLAN_DEBUG=1 to see the traceback."
            )
            raise typer.Exit(1) from None

    return wrapper  # type: ignore[return-value]


def emit_json(obj: Any) -> None:
    import json

    sys.stdout.write(json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


INT_OPTION_MAX = 2**31 - 1  # CP-SAT's random_seed is a 32-bit int; no count option needs more


def check_options(kwargs: dict[str, Any]) -> None:
    """Checks every command's numeric options get, in one place: floats finite (a NaN or inf would
    reach plan.json as a non-JSON token), whole numbers within 32 bits. Domain bounds (GPUs, grid
    sizes, arrival counts) are checked where the value is used, before the work."""
    for name, value in kwargs.items():
        if isinstance(value, bool):
            continue
        if isinstance(value, float) and not math.isfinite(value):
            raise InputError(f"must be a finite number, got {value}.", field=_flag(name), hint="give a finite number.")
        if isinstance(value, int) and abs(value) > INT_OPTION_MAX:
            raise InputError(f"{value} is out of range; at most {INT_OPTION_MAX:,}.", field=_flag(name), hint="give a smaller whole number.")


def _flag(name: str) -> str:
    """The option's flag as the user typed it (--seed), from the running click command."""
    ctx = click.get_current_context(silent=True)
    for p in ctx.command.params if ctx else ():
        if p.name == name and getattr(p, "opts", None):
            return max(p.opts, key=len)
    return "--" + name.replace("_", "-")


def _validation_text(e: ValidationError) -> str:
    parts = []
    for err in e.errors(include_url=False)[:5]:
        loc = ".".join(str(x) for x in err["loc"])
        parts.append(f"{loc}: {err['msg']} (got {str(err.get('input'))[:80]!r})" if loc else err["msg"])
    names = any(err["type"] == "string_pattern_mismatch" for err in e.errors())
    fix = "names are lowercase letters, digits, '-' and '.' (Kubernetes DNS-1123 names)" if names else "see the command's --help for the allowed values"
    return f"invalid value for {e.title}: " + "; ".join(parts) + f". Fix: {fix}."
