"""Readiness without processes: traffic specs, the cost formulas and crossover chart, the checks, the
secret scan, and the recommendation."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from emulators.errors import ConfigError
from emulators.profiles import load_profile
from emulators.records import Record
from harness.readiness import TaskProfile, crossovers, monthly_compute, parse_budget, parse_tier, parse_traffic
from harness.readiness.battery import PatternRun, StateRun
from harness.readiness.chart import crossover_chart
from harness.readiness.checks import check_scaling, check_state, check_time_limits
from harness.readiness.cost import MEMORY_STORAGE_GB_MONTH_USD, MONTH_S, monthly_memory, projection
from harness.readiness.recommend import recommend
from harness.readiness.secrets import env_reads, scan_files
from harness.readiness.traffic import TrafficSpec
from harness.sources import load_source
from harness.sources.apply import mapped_profile

ROOT = Path(__file__).resolve().parents[2]
LEAKY = ROOT / "fixtures" / "agents" / "leaky"
LAMBDA = load_profile("aws-lambda")
K8S = load_profile("k8s-hpa")
ONE_SECOND = TaskProfile(duration_ms=1000.0)  # 1 s of waiting, no CPU, no init, no LLM


def rec(output: object = None, outcome: str = "ok", **kw: object) -> Record:
    return Record(ok=outcome == "ok", outcome=outcome, output=output, trace_id="t", **kw)  # type: ignore[arg-type]


def test_traffic_specs_parse() -> None:
    """Rates in any unit and the bursty shape parse to tasks per second; the default is 1,000 a day, steady."""
    assert parse_traffic(None).per_day == pytest.approx(1000)
    t = parse_traffic("2k/hour,bursty:20")
    assert t.per_s == pytest.approx(2000 / 3600) and t.shape == "bursty" and t.peak_factor == 20
    assert parse_traffic("1M/month").per_month == pytest.approx(1e6)
    assert parse_budget("$200/month") == 200.0 and parse_budget(None) is None
    assert parse_tier("rpm=500,tpm=1000").rpm == 500


@pytest.mark.parametrize("bad", ["fast", "10/fortnight", "0/day", "10/day,spiky", "10/day,bursty:0.5"])
def test_bad_traffic_is_a_config_error(bad: str) -> None:
    """A traffic spec that does not parse is a ConfigError quoting the grammar."""
    with pytest.raises(ConfigError, match=r"RATE|between 1 and 3600"):
        parse_traffic(bad)


def test_named_llm_tiers_carry_the_cited_limits() -> None:
    """OpenAI tier 1 (gpt-4o-mini, L19) and Anthropic tiers 1-4 (Sonnet 4.x, L21) parse to their RPM / TPM."""
    assert (parse_tier("openai-tier1").rpm, parse_tier("openai-tier1").tpm) == (500, 200_000)
    assert [(parse_tier(f"anthropic-tier{n}").rpm, parse_tier(f"anthropic-tier{n}").tpm) for n in (1, 2, 3, 4)] == [
        (50, 30_000), (1_000, 450_000), (2_000, 800_000), (4_000, 2_000_000)]
    assert parse_tier(None) == parse_tier("anthropic-tier1")


def test_bad_budget_and_tier_are_config_errors() -> None:
    """A budget that is not USD, or a tier that is neither named nor rpm/tpm, is a ConfigError."""
    with pytest.raises(ConfigError, match="budget"):
        parse_budget("lots")
    with pytest.raises(ConfigError, match="tier"):
        parse_tier("gold")


def test_crossover_chart_matches_two_hand_computed_points() -> None:
    """The chart's series at 1,000 tasks/day match the formulas worked by hand for Lambda and a k8s pod."""
    # aws-lambda, 1 s at 128 MB: $0.20/1M requests + 1 s x 0.125 GB x $0.0000166667/GB-s per task,
    # x 1,000 x 730/24 tasks a month (cold starts cost nothing here: no init measured).
    per_task = 0.20 / 1e6 + 1.0 * 0.125 * 0.0000166667
    lambda_month = 1000 * 730 / 24 * per_task
    # k8s-hpa: one pod (1 vCPU, 0.5 GB) up all month, priced as a Fargate task of its size (A42):
    # 730 h x ($0.04048 + 0.5 x $0.004445); the profile stores the vCPU rate per second, rounded.
    pod_month = 730 * 3600 * (1 * 0.0000112444 + 0.5 * 0.004445 / 3600)
    assert lambda_month == pytest.approx(0.0694515, rel=1e-5)
    assert pod_month == pytest.approx(730 * (0.04048 + 0.5 * 0.004445), rel=1e-5)
    series = projection(ONE_SECOND, [LAMBDA, K8S], TrafficSpec())
    assert dict(series["aws-lambda"])[1000.0] == pytest.approx(lambda_month, rel=1e-9)
    assert dict(series["k8s-hpa"])[1000.0] == pytest.approx(pod_month, rel=1e-9)
    svg = crossover_chart(series, [], 1000.0)
    assert f"1,000 tasks/day, ${lambda_month:,.6g}/month" in svg
    assert f"1,000 tasks/day, ${pod_month:,.6g}/month" in svg


def test_crossover_is_where_the_pay_per_use_bill_reaches_the_pod() -> None:
    """Serverless stops being cheaper where tasks x per-task price = the pod's month: solved by hand."""
    per_task = 0.20 / 1e6 + 0.125 * 0.0000166667
    pod_month = MONTH_S * (0.0000112444 + 0.5 * 0.004445 / 3600)  # a Fargate-priced pod (A42)
    # k8s-hpa needs a second replica only past 80 concurrent tasks (2.4M/day here), beyond the crossing.
    expected_per_day = pod_month / per_task / (730 / 24)
    [c] = crossovers(ONE_SECOND, LAMBDA, K8S, TrafficSpec())
    assert c["per_day"] == pytest.approx(expected_per_day, rel=1e-6)
    assert c["cheaper_below"] == "aws-lambda" and c["cheaper_above"] == "k8s-hpa"
    assert math.isclose(c["monthly_usd"], pod_month, rel_tol=1e-6)


def test_a_lambda_consumer_on_the_daemon_is_projected_per_invocation() -> None:
    """A Lambda SQS consumer's month is its invocations at Lambda's prices plus 3 SQS requests a task, no workers."""
    worker = load_source(ROOT / "fixtures" / "deployments" / "sam" / "template.yaml").get("WorkerFunction")
    traffic = parse_traffic("10k/day")
    per_task = 0.20 / 1e6 + 1.0 * 0.125 * 0.0000166667 + 3 * 0.40 / 1e6  # A13 at 128 MB; sec. A58
    assert monthly_compute(ONE_SECOND, mapped_profile(worker), traffic) == pytest.approx(
        traffic.per_month * per_task, rel=1e-9)
    assert monthly_compute(ONE_SECOND, load_profile("daemon-local"), traffic) == pytest.approx(
        730 * 0.009589)  # one worker-hour priced worker, all month (RD11)


def test_bursty_traffic_costs_a_warm_pool_its_peak() -> None:
    """Bursty traffic makes a scaling pool hold its peak replicas for the burst plus the scale-down window."""
    steady = monthly_compute(TaskProfile(duration_ms=60_000), K8S, parse_traffic("100k/day"))
    bursty = monthly_compute(TaskProfile(duration_ms=60_000), K8S, parse_traffic("100k/day,bursty"))
    assert bursty > steady


def _run(pattern: str = "serverless", **kw: object) -> PatternRun:
    return PatternRun(pattern, load_profile(None, pattern), **kw)  # type: ignore[arg-type]


def test_state_check_fails_when_the_recycled_session_forgets() -> None:
    """Turns answered differently after recycling than in the control session fail state management."""
    run = _run(state=StateRun([rec({"turn": 1}), rec({"turn": 2})], [rec({"turn": 1}), rec({"turn": 1})], "x"))
    item = check_state(run)
    assert item.verdict == "fail" and item.data["stateful"] is True
    same = _run(state=StateRun([rec({"turn": 1}), rec({"turn": 2})], [rec({"turn": 1}), rec({"turn": 2})], "x"))
    assert check_state(same).verdict == "pass"


def test_state_check_names_in_process_long_term_memory_when_recycled_turns_fail() -> None:
    """An agent that embeds but writes no store, failing only after recycling, fails naming long-term memory."""
    control = [rec({"v": 1}, embedding_tokens=12), rec({"v": 2}, embedding_tokens=12)]
    recycled = [rec({"v": 1}, embedding_tokens=12), rec(outcome="agent_error", error="RuntimeError: forgot ada")]
    item = check_state(_run(state=StateRun(control, recycled, "x")))
    assert item.verdict == "fail" and "long-term memory lost" in item.evidence and "ctx.memory" in item.evidence
    assert item.data["long_term"] == "in-process"
    control_failed = [rec(outcome="agent_error", error="boom"), rec({"v": 2})]
    assert check_state(_run(state=StateRun(control_failed, recycled, "x"))).verdict == "warn"


def test_state_check_reports_ctx_memory_found_across_instances_and_its_monthly_cost() -> None:
    """A ctx.memory agent whose recycled turns match passes, naming writer and reader instances and the cost."""
    control = [rec({"v": 1}, embedding_tokens=20, memory_ops=2, instance_id="i-0001"),
               rec({"v": 2}, embedding_tokens=10, memory_ops=1, instance_id="i-0001")]
    recycled = [rec({"v": 1}, embedding_tokens=10, memory_ops=1, instance_id="i-0003"),
                rec({"v": 2}, embedding_tokens=10, memory_ops=1, instance_id="i-0004")]
    run = _run(state=StateRun(control, recycled, "x"), memory_mode="sqlite-vec", memory_rows=1, memory_dimensions=256)
    item = check_state(run, TrafficSpec(per_s=100_000 / 86400))
    assert item.verdict == "pass" and "sqlite-vec" in item.evidence
    assert "written in i-0001 was found from i-0003, i-0004" in item.evidence
    assert item.data["memory_monthly_usd"] > 0 and any("/month" in d for d in item.details)


def test_monthly_memory_prices_embedding_tokens_and_a_months_rows() -> None:
    """Embeddings at the model's list price; a month's rows at the storage stand-in, per 4-byte dimension."""
    traffic = TrafficSpec(per_s=1000 / 86400)
    m = monthly_memory(50.0, 0.5, 256, traffic)
    assert m.embedding_usd == pytest.approx(50 * traffic.per_month * 0.02 / 1e6, rel=1e-3)
    assert m.rows_after_month == pytest.approx(0.5 * traffic.per_month)
    assert m.storage_usd == pytest.approx(m.rows_after_month * (256 * 4 + 300) / 1e9 * MEMORY_STORAGE_GB_MONTH_USD)


def test_time_limit_outcome_fails_with_the_needed_duration() -> None:
    """A call killed at the limit fails time limits and says how long the task needs where it finished."""
    run = _run(baseline=[rec(outcome="timeout", duration_ms=900_000.0, error="Task timed out")])
    item = check_time_limits(run, natural_ms=1_200_000.0)
    assert item.verdict == "fail" and "1,200.0 s" in item.evidence and "timeout" in item.evidence


def test_scaling_fails_on_a_queue_that_cannot_keep_up() -> None:
    """A burst whose p95 is several times the solo latency (and seconds worse) fails scaling."""
    solo = [rec(latency_ms=1000.0, duration_ms=1000.0)] * 3
    burst = [rec(latency_ms=1000.0 * (i + 1), duration_ms=1000.0) for i in range(8)]
    assert check_scaling(_run("daemon", baseline=solo, burst=burst)).verdict == "fail"
    assert check_scaling(_run("daemon", baseline=solo, burst=solo)).verdict == "pass"


def test_secret_scan_names_the_file_and_line_of_the_planted_key() -> None:
    """detect-secrets finds the planted key in the leaky agent's config.toml at line 5; env reads are listed."""
    pytest.importorskip("detect_secrets")
    found = scan_files([LEAKY / "agent.py", LEAKY / "config.toml"])
    assert found is not None
    assert [(Path(f.file).name, f.line) for f in found] == [("config.toml", 5)]
    assert env_reads(LEAKY / "agent.py") == [(13, "OPENAI_API_KEY")]


def test_a_twenty_minute_task_is_recommended_to_the_daemon() -> None:
    """With 1,200 s tasks and the request-response patterns at their limits, the daemon is the choice."""
    task = TaskProfile(duration_ms=1_200_000.0)
    tested = {p: load_profile(None, p) for p in ("serverless", "container", "daemon", "edge")}
    from harness.readiness.checks import Item

    items = [Item("time limits", p, tested[p].name, "fail", "timeout") for p in ("serverless", "container", "edge")]
    r = recommend(task, tested, items, TrafficSpec(), None)
    assert r.choice is not None and r.choice.pattern == "daemon"
    assert any("aws-lambda" in line and "900 s" in line for line in r.reasons)
