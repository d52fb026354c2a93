"""Shared CLI pieces: the three input flags, error handling, consoles."""

from __future__ import annotations

import functools
import math
import os
import sys
from collections.abc import Callable, Sequence
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
        except BrokenPipeError:  # the reader went away (`... | head`): stop quietly, as click does for --help
            # (before OSError: BrokenPipeError is one, and not an output-folder error)
            _silence_stdout()
            raise typer.Exit(1) from None
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


def _silence_stdout() -> None:
    """Point stdout at /dev/null so that the interpreter's final flush raises no second BrokenPipeError."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # no real file descriptor (a test runner's capture)
        pass


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


def apply_commands(folder: Path) -> list[str]:
    """`kubectl apply` lines for the per-cluster manifests a plan folder holds (-k where the
    cluster folder is a kustomization, -f otherwise)."""
    root = folder / "manifests"
    if not root.is_dir():
        return []
    out = []
    for d in sorted(p for p in root.iterdir() if p.is_dir()):
        flag = "-k" if (d / "kustomization.yaml").exists() else "-f"
        out.append(f"kubectl --context {d.name} apply {flag} {d}")
    return out


def print_table(table: Any, *, drop: Sequence[str] = (), wrap: Sequence[str] = (), out: Console | None = None) -> None:
    """Print a rich Table so that no id or number is cut or broken, at any width (CI logs, pipes).

    Every column is no_wrap except those named in `wrap` (free text, wrapped at spaces, never inside
    a word). When the table does not fit the console, the columns named in `drop` are left out,
    first one first, until it fits; when it still does not fit, each row is printed as a stacked
    block of `column: value` lines, every column included (the one rendering every command uses; tests/test_terminal.py
    checks it at 80 columns)."""
    con = out or console
    for c in table.columns:
        free = _plain(c.header) in wrap
        c.no_wrap, c.overflow = (False, "fold") if free else (True, "ignore")
        c.min_width = _min_width(c, free)
    every, dropped = list(table.columns), list(drop)
    while _table_min(table) > con.width and dropped:
        name = dropped.pop(0)
        table.columns = [c for c in table.columns if _plain(c.header) != name]
    if _table_min(table) > con.width:  # stacked rows have room for every column again
        table.columns = every
        con.print(stacked(table))
        return
    spare = con.width - _table_min(table)
    want = {id(c): _min_width(c, False) - c.min_width for c in table.columns}  # what wrapping saves
    need = sum(want.values())
    if need > spare:  # fixed widths: free text shares the spare room, the rest at full width
        for c in table.columns:
            c.width = c.min_width + (want[id(c)] * spare) // need
    con.print(table)


def _min_width(column: Any, free: bool) -> int:
    """Narrowest a column can be without breaking a word (free text) or any line (the rest)."""
    from rich.cells import cell_len

    width = 1
    for cell in [column.header, *column._cells]:
        for line in _plain(cell).splitlines() or [""]:
            parts = line.split() if free else [line]
            width = max(width, *(cell_len(p) for p in parts or [""]))
    return width


def _table_min(table: Any) -> int:
    """Width of `table` with every column at its minimum: cells, padding and borders."""
    pad = table.padding[1] + table.padding[3] if len(table.padding) == 4 else 2
    edges = (len(table.columns) + 1) if table.box is not None else 0
    return sum(c.min_width + pad for c in table.columns) + edges


def stacked(table: Any) -> Any:
    """The rows of `table` as blocks of `column: value` lines (a grid: keys no_wrap, values folded
    only when a single value is wider than the whole console)."""
    from rich.console import Group
    from rich.table import Table as _Table
    from rich.text import Text

    parts: list[Any] = []
    if table.title:
        parts.append(Text.from_markup(str(table.title), style="bold") if isinstance(table.title, str) else table.title)
    keys = [_plain(c.header) or "-" for c in table.columns]
    cells = [list(c._cells) for c in table.columns]
    for i in range(table.row_count):
        g = _Table.grid(padding=(0, 1))
        g.add_column(no_wrap=True, style="bold")
        g.add_column(overflow="fold")
        for k, col in zip(keys, cells):
            v = col[i]
            if _plain(v) != "":
                g.add_row(k, v)
        parts.append(g)
        parts.append(Text(""))
    return Group(*parts)


def _plain(x: Any) -> str:
    from rich.text import Text

    if isinstance(x, Text):
        return x.plain
    return Text.from_markup(x).plain if isinstance(x, str) else str(x)
