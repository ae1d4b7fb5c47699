"""A deployment file's limits on other patterns (--patterns all): which carry over, from which line, and why not."""

from __future__ import annotations

from pathlib import Path

from harness.sources import load_source
from harness.sources.apply import other_pattern, pattern_arguments

from .sources_files import SAMPLES, write

SAM = SAMPLES / "sam" / "template.yaml"


def test_a_lambda_timeout_and_memory_carry_to_the_container_with_their_lines() -> None:
    """ApiFunction on container: Timeout and MemorySize are taken from their lines; the Lambda-only limits are not."""
    api = load_source(SAM).get("ApiFunction")
    args = pattern_arguments(api, "container")
    assert (args["profile"], args["overrides"]) == (None, {"timeout_s": 20.0, "memory_mb": 256.0})
    lines = args["elsewhere"].lines()
    assert "on container (k8s-hpa): timeout_s = 20 taken from template.yaml:8 (Timeout)" in lines
    assert "on container (k8s-hpa): memory_mb = 256 taken from template.yaml:25 (MemorySize)" in lines
    assert any(line.startswith("not applied on container: gateway_timeout_s, max_concurrency: limits of serverless")
               for line in lines)


def test_nothing_carries_to_the_daemon_or_the_edge_and_each_says_why() -> None:
    """On the daemon and the edge the file's timeout and memory are reported not applied, with the reason."""
    api = load_source(SAM).get("ApiFunction")
    for pattern, why in (("daemon", "without a per-call limit"), ("edge", "no wall-clock limit")):
        there = other_pattern(api, pattern)
        assert there.carried == ()
        assert any(what.startswith("timeout_s = 20 from template.yaml:8") and why in reason
                   for what, reason in there.not_applied)
    assert pattern_arguments(api, "edge")["overrides"] == {}
    assert any("128 MB, C1" in reason for _, reason in other_pattern(api, "edge").not_applied)


def test_the_sqs_consumer_on_serverless_keeps_its_timeout_and_memory_not_its_event_source() -> None:
    """WorkerFunction on serverless: Timeout and MemorySize carry; the SQS settings stay the daemon's."""
    worker = load_source(SAM).get("WorkerFunction")
    there = other_pattern(worker, "serverless")
    assert {f: v for f, v, _ in there.carried} == {"timeout_s": 60.0, "memory_mb": 128.0}
    [(what, _)] = there.not_applied
    assert what == "batch_size, event_source, max_receives, report_batch_item_failures, visibility_timeout_s"


def test_a_value_outside_the_target_platform_range_is_not_applied(tmp_path: Path) -> None:
    """Cloud Run's 3,600 s timeout is over Lambda's 900 s, a 64 Mi pod under its 128 MB: both left, with why."""
    write(tmp_path, "app.py", "def agent(task, ctx):\n    return {}\n")
    path = write(tmp_path, "service.yaml", """
        apiVersion: serving.knative.dev/v1
        kind: Service
        metadata: {name: long}
        spec:
          template:
            spec:
              timeoutSeconds: 3600
              containers:
                - args: ["app.py:agent"]
        """)
    reasons = dict(other_pattern(load_source(path).get(), "serverless").not_applied)
    assert "exceeds the platform maximum of 900" in reasons["timeout_s = 3600 from service.yaml:7 (timeoutSeconds)"]
    path = write(tmp_path, "deploy.yaml", """
        apiVersion: apps/v1
        kind: Deployment
        metadata: {name: small}
        spec:
          template:
            spec:
              containers:
                - args: ["app.py:agent"]
                  resources:
                    limits: {memory: 64Mi}
        """)
    there = other_pattern(load_source(path).get(), "serverless")
    assert there.carried == ()
    assert "below aws-lambda's minimum of 128" in dict(there.not_applied)[
        "memory_mb = 64 from deploy.yaml:10 (resources.limits.memory)"]
