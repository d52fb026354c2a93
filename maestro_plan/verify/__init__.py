"""Independent verifier of plans (shares no code with the solver).

    verify_plan(plan, inputs) -> VerifyReport(ok, violations, checked)
"""

from maestro_plan.verify.verifier import FAMILIES, VerifyReport, Violation, input_digests, verify_plan

__all__ = ["FAMILIES", "Violation", "VerifyReport", "input_digests", "verify_plan"]
