"""Regenerate the log samples in this folder from ../shared/data (run from the repository root:
`python tests/data/logs/make_samples.py`). Token counts are real (ChatDev runs 3 and 4, the first
300 requests of the Azure conversation trace); the OTLP and OpenAI-style files carry the ChatDev
counts in those export formats with illustrative timestamps (each run starts 600 s after the
previous one; a call lasts 0.5 s + 20 ms per output token, calls run one after another)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

HERE = Path(__file__).resolve().parent
DATA = HERE.parents[2].parent / "shared" / "data"
T0 = 1_700_000_000  # 2023-11-14T22:13:20Z


def chatdev_rows() -> list[dict]:
    with open(DATA / "chatdev-warehouse-calls" / "calls.csv", newline="") as f:
        return [r for r in csv.DictReader(f) if r["task_id"] in ("3", "4")]


def main() -> None:
    rows = chatdev_rows()
    with open(DATA / "chatdev-warehouse-calls" / "calls.csv", newline="") as f:
        header = f.readline()
    with open(HERE / "chatdev_head.csv", "w", newline="") as f:
        f.write(header)
        w = csv.DictWriter(f, fieldnames=header.strip().split(","), lineterminator="\n")
        w.writerows(rows)
    with open(DATA / "azure-llm-2023" / "AzureLLMInferenceTrace_conv.csv", "rb") as f:
        lines = f.read().split(b"\n")[:301]
    (HERE / "azure_conv_head.csv").write_bytes(b"\n".join(lines) + b"\n")

    otlp, openai = [], []
    for k, task in enumerate(("3", "4")):
        t = float(T0 + 600 * k)
        spans = []
        for r in [r for r in rows if r["task_id"] == task]:
            dur = 0.5 + 0.02 * int(r["completion_tokens"])
            trace = f"{int(task):032x}"
            agent_id = f"{int(task):08x}{int(r['call_index']) * 2 + 1:08x}"
            chat_id = f"{int(task):08x}{int(r['call_index']) * 2 + 2:08x}"
            ns = lambda s: str(int(round(s * 1e9)))  # noqa: E731
            spans.append({
                "traceId": trace, "spanId": agent_id, "name": f"invoke_agent {r['role']}", "kind": 1,
                "startTimeUnixNano": ns(t), "endTimeUnixNano": ns(t + dur),
                "attributes": [
                    {"key": "gen_ai.operation.name", "value": {"stringValue": "invoke_agent"}},
                    {"key": "gen_ai.agent.name", "value": {"stringValue": r["role"]}},
                ],
            })
            spans.append({
                "traceId": trace, "spanId": chat_id, "parentSpanId": agent_id, "name": "chat gpt-3.5-turbo", "kind": 3,
                "startTimeUnixNano": ns(t), "endTimeUnixNano": ns(t + dur),
                "attributes": [
                    {"key": "gen_ai.operation.name", "value": {"stringValue": "chat"}},
                    {"key": "gen_ai.provider.name", "value": {"stringValue": "openai"}},
                    {"key": "gen_ai.request.model", "value": {"stringValue": "gpt-3.5-turbo"}},
                    {"key": "gen_ai.usage.input_tokens", "value": {"intValue": r["prompt_tokens"]}},
                    {"key": "gen_ai.usage.output_tokens", "value": {"intValue": r["completion_tokens"]}},
                ],
            })
            openai.append({
                "id": f"chatcmpl-{task}-{r['call_index']}", "object": "chat.completion", "created": int(t + dur),
                "model": "gpt-3.5-turbo-0613",
                "usage": {"prompt_tokens": int(r["prompt_tokens"]), "completion_tokens": int(r["completion_tokens"]),
                          "total_tokens": int(r["prompt_tokens"]) + int(r["completion_tokens"])},
                "metadata": {"session_id": f"chatdev-run-{task}", "agent": r["role"], "step": int(r["call_index"])},
            })
            t += dur
        otlp.append({"resourceSpans": [{
            "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "chatdev"}}]},
            "scopeSpans": [{"scope": {"name": "chatdev.agents"}, "spans": spans}],
        }]})
    (HERE / "otel_chatdev.jsonl").write_text("".join(json.dumps(d, separators=(",", ":")) + "\n" for d in otlp))
    (HERE / "openai_usage.jsonl").write_text("".join(json.dumps(d) + "\n" for d in openai))


if __name__ == "__main__":
    main()
