"""Read and write plan.json (canonical, deterministic JSON)."""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import ValidationError

from maestro_plan import atomic
from maestro_plan.errors import InputError
from maestro_plan.load import safe
from maestro_plan.load.loader import validation_problems
from maestro_plan.plan.schema import SCHEMA_VERSION, Plan


def dumps(plan: Plan) -> str:
    """Canonical JSON: sorted keys, 2-space indent, floats as Python repr, trailing newline."""
    # allow_nan=False: a NaN or inf would be written as a non-JSON token; refuse it loudly instead
    return json.dumps(plan.model_dump(mode="json"), indent=2, sort_keys=True, ensure_ascii=False, allow_nan=False) + "\n"


def write_plan(plan: Plan, path: str | Path) -> None:
    atomic.write_text(path, dumps(plan))


def read_plan(path: str | Path) -> Plan:
    p = Path(path)
    if not p.exists():
        raise InputError("plan file does not exist.", file=p, hint="run 'maestro-plan solve' first, or check the path.")
    if p.is_dir():
        if (p / "plan.json").is_file():
            p = p / "plan.json"
        else:
            raise InputError("is a directory without a plan.json in it.", file=p, hint="name the plan.json file.")
    doc = safe.parse_json(safe.read_text(p), p)
    if not isinstance(doc, dict):
        raise InputError("must hold a JSON object (a plan).", file=p)
    version = str(doc.get("schema_version", ""))[:40]
    major = version.split(".")[0]
    if not version:
        raise InputError("has no schema_version; it is not a maestro-plan plan.", file=p, field="schema_version")
    if not (major.isascii() and major.isdigit()) or int(major) > int(SCHEMA_VERSION.split(".")[0]):
        raise InputError(
            f"was written with plan schema {version}; this maestro-plan reads schema {SCHEMA_VERSION}.",
            file=p,
            field="schema_version",
            hint="upgrade maestro-plan, or re-solve with this version.",
        )
    try:
        return Plan.model_validate(doc)
    except ValidationError as e:
        raise InputError(problems=validation_problems(e, Plan, p)) from None
