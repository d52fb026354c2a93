"""Shared CLI pieces: the three input flags, error handling, consoles."""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from maestro_plan.errors import InfeasibleError, InputError, MaestroError

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
            return fn(*args, **kwargs)
        except typer.Exit:
            raise
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
