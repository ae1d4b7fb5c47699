"""The pytest plugin (entry point ``pytest11: harness = "harness.plugin"``): run a user's tests per pattern.

A test that takes the ``deployment`` fixture runs once per selected pattern (``--harness-patterns``); at
the end of the session one table shows, per pattern, calls, failures by kind, latency percentiles, cold
starts, cost and tokens, then which test failed on which pattern and why. ``--harness-report``,
``--harness-html`` and ``--harness-markdown`` write the reports; ``--harness-baseline`` with
``--harness-fail-on`` fails the session on a regression. Shaped like pytest-xdist: options, fixtures and
hookspecs of its own (``hookspecs.py``), the deployment strategy chosen by a ``firstresult`` hook.
"""

from __future__ import annotations

from collections.abc import Generator, Sequence
from typing import Any

import pytest

from .deployments import DeploymentSpec, Registry, split_marker_kwargs
from .fixtures import (
    ATTEMPTED,
    REGISTRY,
    SETTINGS,
    USES,
    _harness_module_scope,
    _harness_session_scope,
    container,
    daemon,
    deployment,
    edge,
    llm_sim,
    make_deployment,
    marker_kwargs,
    serverless,
)
from .options import add_options, parse_patterns, read_settings
from .readiness import readiness
from .session import SessionResult, finish_session, row_for_test

__all__ = [
    "_harness_module_scope",
    "_harness_session_scope",
    "container",
    "daemon",
    "deployment",
    "edge",
    "llm_sim",
    "make_deployment",
    "pytest_addhooks",
    "pytest_addoption",
    "pytest_configure",
    "pytest_generate_tests",
    "pytest_harness_make_deployment",
    "pytest_runtest_makereport",
    "pytest_sessionfinish",
    "pytest_terminal_summary",
    "readiness",
    "serverless",
]

RESULT = pytest.StashKey[SessionResult]()


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    """Register the ``pytest_harness_*`` hookspecs."""
    from . import hookspecs

    pluginmanager.add_hookspecs(hookspecs)


def pytest_addoption(parser: pytest.Parser) -> None:
    """The ``--harness-*`` options and ``harness_*`` ini keys."""
    add_options(parser)


def pytest_configure(config: pytest.Config) -> None:
    """Validate the settings (a bad one is a usage error), register the marker, start the registry."""
    config.addinivalue_line(
        "markers",
        "harness(patterns=[...], profile=..., agent=..., **overrides): which patterns, profile, agent and "
        "profile fields (timeout_s=10, memory_mb=256, env={...}) the harness fixtures of this test use",
    )
    config.stash[SETTINGS] = read_settings(config)
    config.stash[REGISTRY] = Registry(config)
    traces = config.stash[SETTINGS].traces
    if traces is not None and not hasattr(config, "workerinput"):  # deployments append; a session starts it empty
        traces.parent.mkdir(parents=True, exist_ok=True)
        traces.write_text("")


@pytest.hookimpl(trylast=True)
def pytest_harness_make_deployment(config: pytest.Config, spec: DeploymentSpec) -> Any:
    """The default strategy: ``harness.deploy`` with the spec's arguments (started on return).

    A pattern this version does not implement yet skips the test (another implementation of this hook
    may still provide it, which is why the check is here and not earlier).
    """
    from emulators.profiles import IMPLEMENTED_PATTERNS

    from ..api import deploy

    if spec.pattern not in IMPLEMENTED_PATTERNS:
        pytest.skip(f"the {spec.pattern} pattern is not implemented yet in this version of the harness; "
                    f"available: {', '.join(IMPLEMENTED_PATTERNS)}")
    from .options import deploy_defaults

    kwargs = {**deploy_defaults(config, config.stash[SETTINGS], spec.pattern), **spec.kwargs()}
    kwargs.setdefault("traces", config.stash[SETTINGS].traces)  # None: in memory (+ OTLP if the env names one)
    return deploy(**kwargs)


def _ours(metafunc: pytest.Metafunc) -> bool:
    """True if ``deployment`` is this plugin's fixture here (a conftest may define its own)."""
    defs: Sequence[Any] = getattr(metafunc, "_arg2fixturedefs", {}).get("deployment") or ()
    return bool(defs) and str(getattr(defs[-1].func, "__module__", "")).startswith(__name__)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Parametrize ``deployment`` over the selected patterns (the marker's ``patterns=`` wins); ids = names."""
    if "deployment" not in metafunc.fixturenames or not _ours(metafunc):
        return
    settings = metafunc.config.stash[SETTINGS]
    _, _, _, marked = split_marker_kwargs(marker_kwargs(metafunc.definition))
    patterns = settings.patterns if marked is None else parse_patterns(
        marked, f"{metafunc.definition.nodeid}: @pytest.mark.harness(patterns=...)")
    if len(settings.functions) > 1:  # --harness-from a file of several functions: each on its own pattern(s)
        explicit = marked is not None or bool(metafunc.config.getoption("harness_patterns"))
        params = [f"{name}::{p}" for name, own in settings.functions for p in (patterns if explicit else [own])]
        metafunc.parametrize("deployment", params, indirect=True, ids=[x.replace("::", "-") for x in params])
        return
    metafunc.parametrize("deployment", list(patterns), indirect=True, ids=list(patterns))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, Any, Any]:
    """Note per test which pattern it ran on and why it failed; keep secrets out of pytest's own reports."""
    report = yield
    uses = item.stash.get(USES, None)
    attempted = list(item.stash.get(ATTEMPTED, ()))
    callspec = getattr(item, "callspec", None)
    param = callspec.params.get("deployment") if callspec is not None else None
    if param is not None and not attempted:
        attempted = [str(param)]  # skipped or failed before the fixture ran: the parameter names the pattern
    if uses is None and not attempted:
        return report
    registry = item.config.stash[REGISTRY]
    if report.when == "call" or (report.when == "setup" and not report.passed):
        registry.tests.append(row_for_test(item, report, uses or [], attempted))
    _redact_report(report, registry)
    return report


def _redact_report(report: pytest.TestReport, registry: Registry) -> None:
    """A failure message or captured output that shows a secret is rewritten (it lands in JUnit XML)."""
    from ..reports.redact import Redactor

    redactor = Redactor(registry.secret_env_values())
    if report.longrepr is not None:
        text = str(report.longrepr)
        if redactor.contains_secret(text):
            report.longrepr = redactor.text(text)
    report.sections = [(title, redactor.text(body)) for title, body in report.sections]


@pytest.hookimpl(tryfirst=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Stop what is left, build and write the reports, apply the baseline gate (before the summary prints)."""
    config = session.config
    if SETTINGS not in config.stash:
        return
    result = finish_session(config, config.stash[SETTINGS], config.stash[REGISTRY])
    config.stash[RESULT] = result
    if result.failed_gate and session.exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    """The per-pattern table, the failed tests by pattern, and the baseline comparison."""
    result = config.stash.get(RESULT, None)
    if result is None or not result.active:
        return
    tr = terminalreporter
    tr.write_sep("=", "agent deployment harness")
    width = max(80, int(tr._tw.fullwidth))  # pytest's own width, so the table lines up with its output
    for line in result.lines(width=width, color=bool(getattr(tr, "hasmarkup", False))):
        tr.write_line(line)

