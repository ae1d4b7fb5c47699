"""The pytest plugin as a user meets it: loaded from the installed package, options, fixtures, summary, gate."""

from __future__ import annotations

import json
from importlib.metadata import entry_points
from pathlib import Path

import pytest

from emulators.profiles import IMPLEMENTED_PATTERNS, PATTERNS

ROOT = Path(__file__).resolve().parents[2]
AGENTS = ROOT / "fixtures" / "agents"

# A fake deployment behind the plugin's firstresult hook: the plugin's mechanics for all four patterns,
# whichever of them this version implements.
FAKE_CONFTEST = '''
import time
from emulators.profiles import Profile
from emulators.records import Record, summarize

STARTS = []

class FakeDeployment:
    def __init__(self, spec):
        self.pattern, self.profile, self._records = spec.pattern, Profile(name="fake"), []
    def invoke(self, task, session_id=None):
        r = Record(ok=True, outcome="ok", latency_ms=5.0, pattern=self.pattern, profile="fake",
                   started_at=time.time(), ended_at=time.time(), instance_id="i-1")
        self._records.append(r)
        return r
    def records(self):
        return list(self._records)
    def summary(self):
        return summarize(self._records, pattern=self.pattern, profile="fake")
    def close(self):
        with open("events.log", "a") as f:
            f.write(f"stop {self.pattern}\\n")

def pytest_harness_make_deployment(config, spec):
    with open("events.log", "a") as f:
        f.write(f"start {spec.pattern}\\n")
    return FakeDeployment(spec)
'''

ONE_TEST = """
def test_answers(deployment):
    '''One call per pattern.'''
    assert deployment.invoke({"q": "hi"}).ok
"""


def test_plugin_loads_from_the_installed_package(pytester: pytest.Pytester) -> None:
    """The pytest11 entry point names harness.plugin, and a fresh pytest lists its options in --help."""
    assert any(ep.value == "harness.plugin" for ep in entry_points(group="pytest11"))
    result = pytester.runpytest_subprocess("--help")
    result.stdout.fnmatch_lines(["*--harness-agent=AGENT*", "*--harness-patterns=LIST*", "*--harness-fail-on*"])


@pytest.mark.parametrize(("args", "message"), [
    (["--harness-patterns", "lamda"], "unknown pattern 'lamda'; expected one of: " + ", ".join(PATTERNS)),
    (["--harness-time-scale", "-1"], "or a positive number"),
    (["--harness-fail-on", "p95>>2"], "accepted grammar: comma-separated rules"),
    (["--harness-fail-on", "p95:+20%"], "compares against a baseline"),
    (["--harness-profile", "lambda=aws-lambda"], "unknown pattern 'lambda'"),
    (["--harness-baseline", "missing.json"], "does not exist"),
    (["--harness-memory", "redis://127.0.0.1/0"],  # harness run --memory's message, named by the option
     "--harness-memory: memory store 'redis://127.0.0.1/0': expected sqlite:// (the default)"),
])
def test_bad_options_are_usage_errors(pytester: pytest.Pytester, args: list[str], message: str) -> None:
    """An invalid option is a usage error (exit 4) whose message says what is accepted."""
    pytester.makepyfile(ONE_TEST)
    result = pytester.runpytest_subprocess(*args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert message in result.stderr.str()


def test_one_deployment_test_runs_once_per_pattern_and_the_summary_shows_each(pytester: pytest.Pytester) -> None:
    """With all four patterns selected, one `deployment` test runs four times, and the table has four rows."""
    pytester.makeconftest(FAKE_CONFTEST)
    pytester.makepyfile(ONE_TEST)
    result = pytester.runpytest_subprocess("--harness-agent", f"{AGENTS / 'echo.py'}:agent", "-v",
                                           "--harness-patterns", ",".join(PATTERNS))
    result.assert_outcomes(passed=4)
    result.stdout.fnmatch_lines([f"*test_answers?{p}? PASSED*" for p in PATTERNS], consecutive=False)
    summary = result.stdout.str().split("agent deployment harness")[1]
    for p in PATTERNS:
        assert f" {p} " in summary, summary


def test_deployments_start_once_per_scope_and_stop(pytester: pytest.Pytester) -> None:
    """Module scope: one start and one stop per module and pattern; session scope: one for the whole run."""
    pytester.makeconftest(FAKE_CONFTEST)
    for name in ("test_a", "test_b"):
        pytester.makepyfile(**{name: ONE_TEST + ONE_TEST.replace("test_answers", "test_again")})
    agent = f"{AGENTS / 'echo.py'}:agent"
    pytester.runpytest_subprocess("--harness-agent", agent, "--harness-patterns", "serverless,edge").assert_outcomes(
        passed=8)
    log = (pytester.path / "events.log").read_text().split()
    assert log.count("start") == 4 and log.count("stop") == 4  # 2 modules x 2 patterns
    (pytester.path / "events.log").unlink()
    pytester.runpytest_subprocess("--harness-agent", agent, "--harness-patterns", "serverless,edge",
                                  "--harness-scope", "session").assert_outcomes(passed=8)
    log = (pytester.path / "events.log").read_text().split()
    assert log.count("start") == 2 and log.count("stop") == 2


@pytest.mark.integration
def test_real_deployments_run_per_implemented_pattern_and_leave_no_process(pytester: pytest.Pytester) -> None:
    """Against real processes: every implemented pattern runs, its row shows, and no process is left."""
    pytester.makepyfile(ONE_TEST + '''
import pytest

@pytest.mark.harness(patterns=["serverless"], timeout_s=2)
def test_times_out(deployment):
    """A 5 s task past Lambda's 2 s limit fails, and the summary names the pattern and why."""
    r = deployment.invoke({"seconds": 5})
    assert r.ok, r.error
''')
    report = pytester.path / "out.json"
    result = pytester.runpytest_subprocess("--harness-agent", f"{AGENTS / 'sleeper.py'}:agent",
                                           "--harness-patterns", "all", "--harness-time-scale", "0.001",
                                           "--harness-report", str(report), "--junitxml", "junit.xml")
    result.assert_outcomes(passed=len(IMPLEMENTED_PATTERNS), failed=1)
    out = result.stdout.str()
    assert "test_times_out[serverless] failed on serverless: AssertionError: Task timed out after 2.00 seconds" in out
    table = out.split("agent deployment harness")[1]
    assert all(f" {p} " in table for p in IMPLEMENTED_PATTERNS) and "timeout 1" in table
    data = json.loads(report.read_text())
    assert set(data["summaries"]) == set(IMPLEMENTED_PATTERNS)
    assert data["summaries"]["serverless"]["calls"] == 2
    assert 'name="harness.pattern"' in (pytester.path / "junit.xml").read_text()
    # No process left: the autouse check of tests/conftest.py fails any integration test that leaks one
    # (the subprocess's processes carry this session's marker in their environment).


@pytest.mark.integration
def test_the_baseline_gate_fails_on_a_regression_and_passes_within_the_threshold(pytester: pytest.Pytester) -> None:
    """--harness-baseline: p95 twice the baseline's fails the session with a clear message; the same passes."""
    pytester.makepyfile("""
def test_sleeps(deployment):
    '''Five one-second sleeps: a latency stable from run to run.'''
    for _ in range(5):
        assert deployment.invoke({"seconds": 1}).ok
""")
    args = ["--harness-agent", f"{AGENTS / 'sleeper.py'}:agent", "--harness-patterns", "serverless",
            "--harness-time-scale", "0.001"]
    first = pytester.path / "first.json"
    pytester.runpytest_subprocess(*args, "--harness-report", str(first)).assert_outcomes(passed=1)
    data = json.loads(first.read_text())
    data["summaries"]["serverless"]["latency_p95_ms"] /= 2
    (pytester.path / "half.json").write_text(json.dumps(data))

    failed = pytester.runpytest_subprocess(*args, "--harness-baseline", "half.json", "--harness-fail-on", "p95:+20%")
    assert failed.ret == pytest.ExitCode.TESTS_FAILED
    failed.stdout.fnmatch_lines(["*REGRESSION: serverless p95 * -> * (+*%), allowed +20% (p95:+20%)*",
                                 "*1 check(s) failed against --harness-fail-on; the session fails*"])

    passed = pytester.runpytest_subprocess(*args, "--harness-baseline", "first.json", "--harness-fail-on", "p95:+20%")
    assert passed.ret == pytest.ExitCode.OK, passed.stdout.str()
    passed.stdout.fnmatch_lines(["*every --harness-fail-on check passed*"])


FACT = "I am on the Pro plan, billed yearly"
RECALL_TEST = f"""
import os
import pytest

@pytest.mark.harness(timeout_s=60)  # a cold start imports openai: seconds on a busy machine, past Lambda's 3 s
def test_recalls(deployment):
    '''The customer's first fact is what the agent remembers, whatever this run's customer says.'''
    r = deployment.invoke({{"customer": "ada", "says": os.environ["SAYS"], "asks": "which plan am I on?"}})
    assert r.ok, r.error
    assert r.output["remembered"] == [{FACT!r}]
"""


@pytest.mark.integration
@pytest.mark.parametrize("store", ["sqlite", "postgres"])
def test_harness_memory_outlives_a_session(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch,
                                           request: pytest.FixtureRequest, store: str) -> None:
    """--harness-memory (or harness_memory in the ini file): a later session recalls what an earlier one stored."""
    memory = (f"sqlite:///{pytester.path / 'memory.db'}" if store == "sqlite"
              else str(request.getfixturevalue("postgres_memory_url")))
    pytester.makepyfile(RECALL_TEST)
    args = ["--harness-agent", f"{AGENTS / 'support_memory.py'}:agent", "--harness-patterns", "serverless,container"]
    monkeypatch.setenv("SAYS", FACT)  # serverless stores it; container, on the same store, finds it
    pytester.runpytest_subprocess(*args, "--harness-memory", memory).assert_outcomes(passed=2)
    monkeypatch.setenv("SAYS", "I moved to the Team plan")  # stored instead, had nothing been found
    pytester.makeini(f"[pytest]\nharness_memory = {memory}\n")
    pytester.runpytest_subprocess(*args).assert_outcomes(passed=2)
