"""``GET /stats`` and ``GET /metrics``: the live summary as JSON and in the Prometheus text format.

Both come from the deployment's ``Tally`` (kept from its records as each one arrives, so a question costs
the same after a million calls as after ten; percentiles within 1 %) plus the gateway's own gauges (tasks
by state, open streams, HTTP responses by status); nothing about invocations is counted separately here.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from ..pattern import Emulator
from ..records import OUTCOMES
from .tasks import TaskRegistry

__all__ = ["PROMETHEUS_CONTENT_TYPE", "prometheus_text", "stats_json"]

PROMETHEUS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def stats_json(emulator: Emulator, registry: TaskRegistry, *, url: str | None, streams: int,
               responses: Counter[int]) -> dict[str, Any]:
    """The live summary of the deployment and its gateway."""
    instances = [i for i in emulator.pool.instances if getattr(i, "alive", True)]
    return {
        "pattern": emulator.pattern,
        "profile": emulator.profile.name,
        "url": url,
        "summary": emulator.summary().to_json(),
        "tasks": registry.counts(),
        "open_streams": streams,
        "instances": len(instances),
        "http_responses": {str(k): v for k, v in sorted(responses.items())},
    }


def _labels(**kv: str) -> str:
    def esc(v: str) -> str:
        return v.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')

    return "{" + ",".join(f'{k}="{esc(v)}"' for k, v in kv.items()) + "}"


def _num(v: float) -> str:
    return repr(float(v)) if v != int(v) else str(int(v))


def prometheus_text(emulator: Emulator, registry: TaskRegistry, *, streams: int,
                    responses: Counter[int]) -> str:
    """Prometheus exposition format (text 0.0.4) of the same figures as ``/stats``."""
    base = {"pattern": emulator.pattern, "profile": emulator.profile.name}
    tally = emulator.records.tally  # kept as records arrive: this costs the same at any number of calls
    by_outcome = tally.outcomes
    latency = tally.latency
    summary = emulator.summary()
    out: list[str] = []

    def metric(name: str, kind: str, help_: str, samples: list[tuple[dict[str, str], float]]) -> None:
        out.append(f"# HELP {name} {help_}")
        out.append(f"# TYPE {name} {kind}")
        out.extend(f"{name}{_labels(**labels)} {_num(v)}" for labels, v in samples)

    metric("harness_invocations_total", "counter", "Invocations by outcome kind.",
           [({**base, "outcome": o}, by_outcome.get(o, 0)) for o in OUTCOMES])
    metric("harness_cold_starts_total", "counter", "Invocations that cold-started an instance.",
           [(base, tally.cold)])
    out.append("# HELP harness_latency_ms Latency as the caller sees it, platform milliseconds.")
    out.append("# TYPE harness_latency_ms summary")
    for q in (0.5, 0.95, 0.99):
        out.append(f"harness_latency_ms{_labels(**base, quantile=str(q))} {_num(latency.percentile(q * 100))}")
    out.append(f"harness_latency_ms_sum{_labels(**base)} {_num(latency.total)}")
    out.append(f"harness_latency_ms_count{_labels(**base)} {latency.count}")
    metric("harness_cost_usd_total", "counter", "Cost of the invocations so far, USD (compute, requests, LLM).",
           [(base, summary.cost_usd)])
    metric("harness_fixed_cost_usd", "gauge", "Cost not per invocation (provisioned capacity), USD.",
           [(base, summary.fixed_cost_usd)])
    metric("harness_llm_tokens_total", "counter", "LLM tokens of the invocations, by direction.",
           [({**base, "direction": "input"}, summary.input_tokens),
            ({**base, "direction": "output"}, summary.output_tokens)])
    metric("harness_instances", "gauge", "Instances alive now.",
           [(base, sum(1 for i in emulator.pool.instances if getattr(i, "alive", True)))])
    metric("harness_tasks", "gauge", "Background tasks by state.",
           [({**base, "state": s}, n) for s, n in registry.counts().items()])
    metric("harness_open_streams", "gauge", "SSE and WebSocket streams open now.", [(base, streams)])
    metric("harness_http_responses_total", "counter", "Gateway HTTP responses by status code.",
           [({**base, "code": str(code)}, n) for code, n in sorted(responses.items())])
    return "\n".join(out) + "\n"
