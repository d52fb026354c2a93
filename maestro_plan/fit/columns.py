"""Which log column holds what: canonical fields, their flags and the names gateways export.

A column name is compared after normalisation (lower case, '_' and '-' removed), and matches an
alias when it equals it or ends with '.' + alias (so nested JSON such as `usage.prompt_tokens`,
`attributes.gen_ai.usage.input_tokens` or `metadata.session_id` is recognised).

Where the aliases come from:
- OpenAI chat completions `usage` object: prompt_tokens, completion_tokens,
  prompt_tokens_details.cached_tokens (https://platform.openai.com/docs/api-reference/chat/object).
- Anthropic messages `usage`: input_tokens, output_tokens, cache_read_input_tokens
  (https://docs.anthropic.com/en/api/messages).
- OpenTelemetry GenAI semantic conventions (https://opentelemetry.io/docs/specs/semconv/gen-ai/):
  gen_ai.usage.input_tokens, gen_ai.usage.output_tokens, gen_ai.request.model,
  gen_ai.response.model, gen_ai.agent.name, gen_ai.conversation.id,
  gen_ai.usage.cache_read.input_tokens; older releases used gen_ai.usage.prompt_tokens /
  completion_tokens. OTLP span fields: traceId, spanId, parentSpanId, startTimeUnixNano,
  endTimeUnixNano; resource attribute service.name.
- OpenLLMetry (Traceloop) spans: llm.usage.prompt_tokens, llm.usage.completion_tokens.
- LiteLLM spend logs: startTime, endTime, session_id, model, prompt_tokens, completion_tokens.
- Public traces: Azure LLM inference trace (TIMESTAMP, ContextTokens, GeneratedTokens), Mooncake
  (timestamp, input_length, output_length), ChatDev WareHouse extraction (task_id, role,
  call_index, prompt_tokens, completion_tokens, api_latency_s).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Field:
    key: str
    flag: str | None  # the CLI flag that maps it (None: recognised by name only)
    what: str
    aliases: tuple[str, ...]
    required: bool = False


FIELDS: tuple[Field, ...] = (
    Field(
        "input",
        "--input-col",
        "input (prompt) tokens per call",
        (
            "gen_ai.usage.input_tokens",
            "gen_ai.usage.prompt_tokens",
            "llm.usage.prompt_tokens",
            "input_tokens",
            "prompt_tokens",
            "contexttokens",
            "input_length",
            "num_input_tokens",
            "n_input_tokens",
            "tokens_in",
            "input_token_count",
            "prompt_token_count",
        ),
        required=True,
    ),
    Field(
        "output",
        "--output-col",
        "output (completion) tokens per call",
        (
            "gen_ai.usage.output_tokens",
            "gen_ai.usage.completion_tokens",
            "llm.usage.completion_tokens",
            "output_tokens",
            "completion_tokens",
            "generatedtokens",
            "output_length",
            "num_output_tokens",
            "n_output_tokens",
            "tokens_out",
            "output_token_count",
            "completion_token_count",
            "candidates_token_count",
        ),
        required=True,
    ),
    Field(
        "model",
        "--model-col",
        "model name",
        ("gen_ai.request.model", "llm.request.model", "model", "model_name", "model_id", "gen_ai.response.model", "llm.response.model", "model_group"),
    ),
    Field(
        "role",
        "--role-col",
        "role (agent name)",
        ("gen_ai.agent.name", "agent.name", "agent_name", "agent", "role", "role_name", "agent_role"),
    ),
    Field(
        "trace",
        "--trace-col",
        "trace / session id (one query of the workflow)",
        (
            "trace_id",
            "traceid",
            "gen_ai.conversation.id",
            "session_id",
            "sessionid",
            "conversation_id",
            "thread_id",
            "run_id",
            "task_id",
            "query_id",
            "request_group_id",
        ),
    ),
    Field(
        "workflow",
        "--workflow-col",
        "workflow (application) name",
        ("workflow", "workflow_name", "workflow.name", "app_name", "application", "app", "service.name"),
    ),
    Field(
        "timestamp",
        "--timestamp-col",
        "call start time",
        (
            "starttimeunixnano",
            "start_time_unix_nano",
            "start_time",
            "starttime",
            "timestamp",
            "time",
            "ts",
            "created",
            "created_at",
            "request_time",
            "timestamp_ms",
        ),
    ),
    Field("end", None, "call end time", ("endtimeunixnano", "end_time_unix_nano", "end_time", "endtime", "completed_at", "completion_time")),
    Field(
        "latency",
        "--latency-col",
        "call latency",
        ("latency_ms", "latency_s", "latency", "duration_ms", "duration_s", "duration", "api_latency_s", "response_time_ms", "response_time"),
    ),
    Field("source", "--source-col", "request source (region, client)", ("source", "source_region", "client_region", "user_region")),
    Field("order", "--order-col", "call order inside a trace", ("call_index", "step", "step_index", "seq", "sequence", "turn", "turn_index")),
    Field(
        "cached",
        None,
        "input tokens served from a prefix cache",
        (
            "gen_ai.usage.cache_read.input_tokens",
            "gen_ai.usage.cache_read_input_tokens",
            "prompt_tokens_details.cached_tokens",
            "cache_read_input_tokens",
            "cached_tokens",
            "cached_content_token_count",
        ),
    ),
    Field("span", None, "span id", ("spanid", "span_id")),
    Field("parent", None, "parent span id", ("parentspanid", "parent_span_id", "parent_id")),
)

BY_KEY = {f.key: f for f in FIELDS}
FLAGS = {f.key: f.flag for f in FIELDS if f.flag}


def norm(name: str) -> str:
    return str(name).strip().lower().replace("_", "").replace("-", "").replace(" ", "")


def _matches(column: str, alias: str) -> bool:
    c, a = norm(column), norm(alias)
    return c == a or c.endswith("." + a)


def resolve(columns: list[str], explicit: dict[str, str | None]) -> tuple[dict[str, str], dict[str, str]]:
    """Map canonical fields to column names.

    Returns (mapping, missing_explicit): `missing_explicit` holds fields whose flag named a column
    that is not there (field -> the name given). Auto-recognition tries aliases in order; among
    columns that match one alias, the shortest name wins (deterministic). A column is used once.
    """
    mapping: dict[str, str] = {}
    missing: dict[str, str] = {}
    used: set[str] = set()
    by_norm: dict[str, str] = {}
    for c in columns:
        by_norm.setdefault(norm(c), c)
    for key, given in explicit.items():
        if not given:
            continue
        if given in columns:
            mapping[key] = given
        elif norm(given) in by_norm:
            mapping[key] = by_norm[norm(given)]
        else:
            missing[key] = given
            continue
        used.add(mapping[key])
    for f in FIELDS:
        if f.key in mapping or f.key in missing:
            continue
        for alias in f.aliases:
            hits = [c for c in columns if c not in used and _matches(c, alias)]
            if f.key in ("input", "output"):
                # cache counters (cache_read.input_tokens) are not the call's token counts
                hits = [c for c in hits if "cache" not in norm(c)]
            if hits:
                pick = sorted(hits, key=lambda c: (len(c), c))[0]
                mapping[f.key] = pick
                used.add(pick)
                break
    return mapping, missing
