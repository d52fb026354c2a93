"""Write a LinearModel to a file that reproduces its solve outside maestro-plan.

    FILE.mps          MPS (free format, written by HiGHS): the first objective, integrality and
                      bounds; read it with `highs FILE.mps`, highspy.Highs().readModel, CBC, ...
    FILE.pb.txt/.txt  CP-SAT's CpModelProto as text, exactly as CP-SAT is given it (continuous
                      variables scaled to integer steps, rows scaled or tightened; cpsat.py) with
                      the first objective; solve it with OR-Tools' `solve` tool or
                      cp_model.CpModel + text_format.Parse.

Later lexicographic phases (tie-breaks) are not in the file: they add a row holding the first
objective at its optimum and change the objective (model.lexicographic).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from maestro_plan import atomic
from maestro_plan.errors import InputError
from maestro_plan.solve.model import LinearModel

MPS_SUFFIXES = (".mps",)
CPSAT_SUFFIXES = (".txt",)  # .pb.txt ends in .txt


def check_path(path: str | Path) -> Path:
    """The dump's path, if its extension names a format (InputError otherwise: exit code 2)."""
    p = Path(path)
    if not p.name.lower().endswith(MPS_SUFFIXES + CPSAT_SUFFIXES):
        raise InputError(f"cannot tell the model format from the name '{p.name}'.", field="--dump-model", hint="end the file name in .mps (HiGHS, CBC) or .pb.txt (CP-SAT proto text).")
    return p


def dump_model(lm: LinearModel, path: str | Path, *, seed: int = 0) -> Path:
    """Write `lm` to `path` (atomically) in the format its extension names (see the module doc)."""
    p = check_path(path)
    if p.name.lower().endswith(MPS_SUFFIXES):
        atomic.write_bytes(p, _mps(lm, seed))
    else:
        atomic.write_text(p, _cpsat_text(lm))
    return p


def _mps(lm: LinearModel, seed: int) -> bytes:
    from maestro_plan.solve.milp import highs_instance, set_objective

    h = highs_instance(lm, relax=False, seed=seed, time_limit=1.0)
    if lm.objectives:
        set_objective(h, lm, 0)
    with tempfile.TemporaryDirectory(prefix="maestro-dump-") as tmp:
        f = Path(tmp) / "model.mps"
        h.writeModel(str(f))
        return f.read_bytes()


def _cpsat_text(lm: LinearModel) -> str:
    from maestro_plan.solve.cpsat import Translator

    tr = Translator(lm)
    if lm.objectives:
        obj = lm.objectives[0]
        expr, _scale, _ids, _cs = tr.objective_expr(obj.terms)
        tr.cp.Minimize(expr) if obj.sense == "min" else tr.cp.Maximize(expr)
    return str(tr.cp.Proto())
