"""Synthetic fleets for benchmarks and property tests: `maestro-plan synth`.

    generate(spec) -> dict[relative path, file text]     (pure, deterministic for a seed)
    write_synth(spec, out_dir) -> list[Path]             (atomic; refuses a foreign non-empty folder)

The output is an input folder (inventories/fleet.yaml, models/*.yaml, workloads/*.yaml) that
`maestro-plan validate` accepts. It is synthetic, but built from real parts:

- GPU types are the built-in table's (maestro_plan/data/gpus.yaml); node shapes are real cloud
  instance shapes (GPUs per node, host DRAM) listed in NODE_SHAPES with the instance they copy.
- Models are the catalogue's architectures (the bundled models/ folder by default, else the five
  architectures embedded in EMBEDDED_MODELS, copied from their Hugging Face config.json). When
  more models are asked for than the catalogue holds, the extra ones are fine-tuned variants:
  the same architecture under a distinct id (as fleets serving many LoRA-merged fine-tunes have).
- Role token lengths are measured distributions: ChatDev per-role calls (chatdev-warehouse-calls,
  123 runs) and the Azure LLM inference traces 2023 (code and conversation); see TOKEN_DISTS.
- Network latency between places follows distance: one-way ms = great-circle km x 2.1 / 204 km/ms
  (the rule of thumb of Bozkurt et al., "Dissecting Latency in the Internet's Fiber
  Infrastructure", 2018: line-of-sight distance x 2.1 over the speed of light in fibre, c / 1.468),
  with 100 km as the least distance (AWS: availability zones of a region are within 100 km).
- Rates are scaled to the largest demand that, provisioned with the default 20 % headroom, fits in
  a fluid relaxation using at most `load` of the GPUs of every (cluster, GPU type), each demand on
  GPUs within reach of its latency budget (a linear program over the estimator's own capacity
  figures). So the fleet keeps spare GPUs of every kind and an integer plan (whole replicas, zone
  spread) exists with room to optimise. SLOs are set from the estimator's
  unloaded latency with a slack factor, then loosened until every role has a reachable budget.

Determinism: one random.Random(seed) drives every choice, and only its random() output is used
(Python guarantees that sequence across versions and platforms); files are YAML with a fixed key
order and rounded numbers, so the same spec gives byte-identical files.

Modules: tables (the real parts and their sources), spec (SynthSpec, the random source), fleet,
models, workflows, perf (estimator answers and the rate-sizing LP), generate (files, write_synth).
"""

from maestro_plan.synth.generate import MARKER, generate, write_synth
from maestro_plan.synth.models import embedded_catalogue, load_catalogue
from maestro_plan.synth.spec import SynthSpec
from maestro_plan.synth.tables import EMBEDDED_MODELS, NODE_SHAPES, TOKEN_DISTS, one_way_ms

__all__ = ["EMBEDDED_MODELS", "MARKER", "NODE_SHAPES", "SynthSpec", "TOKEN_DISTS", "embedded_catalogue", "generate", "load_catalogue", "one_way_ms", "write_synth"]
