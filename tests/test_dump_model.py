"""--dump-model: the written model reads back (HiGHS for MPS, CP-SAT's proto text) with the same
rows and columns and the same optimum as the model solved in the tool."""

from __future__ import annotations

import pytest

from maestro_plan.errors import InputError
from maestro_plan.solve.cpsat import solve_cpsat
from maestro_plan.solve.dump import dump_model
from maestro_plan.solve.milp import new_highs, solve_highs
from maestro_plan.solve.model import LinearModel


def _knapsack() -> LinearModel:
    """max 5a + 4b + 3c s.t. 2a + 3b + c <= 5, a + 2b + 2c <= 4 (a, b, c in 0..3): optimum 13 (a = 2, c = 1)."""
    lm = LinearModel()
    a, b, c = (lm.var(n, 0, 3, integer=True) for n in "abc")
    lm.le("r1", "capacity", {a: 2, b: 3, c: 1}, 5)
    lm.le("r2", "capacity", {a: 1, b: 2, c: 2}, 4)
    lm.objective("value", "max", {a: 5, b: 4, c: 3})
    return lm


def test_mps_reads_back_with_the_same_shape_and_optimum(tmp_path):
    lm = _knapsack()
    path = dump_model(lm, tmp_path / "model.mps")
    h = new_highs()
    h.setOptionValue("threads", 1)  # HiGHS' thread scheduler is process-wide: the solver's setting
    h.readModel(str(path))
    assert (h.getNumRow(), h.getNumCol()) == (len(lm.rows), len(lm.vars))
    h.run()
    assert solve_highs(lm, time_limit=10).objective == pytest.approx(13.0)
    assert h.getInfo().objective_function_value == pytest.approx(13.0)


def test_cpsat_proto_text_reads_back_with_the_same_shape_and_optimum(tmp_path):
    from ortools.sat.python import cp_model

    lm = _knapsack()
    path = dump_model(lm, tmp_path / "model.pb.txt")
    model = cp_model.CpModel()
    model.Proto().parse_text_format(path.read_text(encoding="utf-8"))
    assert (len(model.Proto().constraints), len(model.Proto().variables)) == (len(lm.rows), len(lm.vars))
    solver = cp_model.CpSolver()
    solver.parameters.num_workers = 1
    assert solver.Solve(model) == cp_model.OPTIMAL
    assert solve_cpsat(lm, time_limit=5).objective == pytest.approx(13.0)
    assert solver.ObjectiveValue() == pytest.approx(13.0)


def test_an_unknown_extension_is_a_clear_input_error(tmp_path):
    with pytest.raises(InputError, match="--dump-model"):
        dump_model(_knapsack(), tmp_path / "model.lp")
