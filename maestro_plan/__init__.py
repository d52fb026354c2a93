"""maestro-plan: offline placement optimizer for fleets of LLMs serving multi-agent systems.

The package is a pipeline, like a compiler:

    load      (maestro_plan.load)      parse and validate inputs into typed objects
    estimate  (maestro_plan.estimate)  memory and performance of one replica; workload demand
    solve     (maestro_plan.solve)     candidates, integer program, solver backends
    plan      (maestro_plan.plan)      the typed plan artifact (JSON with a schema)
    verify    (maestro_plan.verify)    independent re-check of a plan against the inputs
    emit      (maestro_plan.emit)      manifests, routing tables, reports (pure functions of the plan)

Nothing downstream imports from a later stage.
"""

__version__ = "0.1.0"
