"""The plugin's fixtures: ``deployment`` (one per selected pattern), one per pattern, a factory, the LLM.

``deployment`` and the per-pattern fixtures are function-scoped handles onto deployments that live as
long as ``--harness-scope`` says (a module by default): the handle records which records a test produced,
and the scope's own fixture stops the deployment when the scope ends.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from .deployments import DeploymentSpec, Registry, TestUse, resolve_agent_spec, split_marker_kwargs
from .options import Settings

if TYPE_CHECKING:
    from .llm import LLMSim

__all__ = ["container", "daemon", "deployment", "edge", "llm_sim", "make_deployment", "serverless"]

REGISTRY = pytest.StashKey[Registry]()
SETTINGS = pytest.StashKey[Settings]()
USES = pytest.StashKey[list[TestUse]]()
ATTEMPTED = pytest.StashKey[list[str]]()  # patterns a test asked for, in order (to name the one that failed)
_factory_ids = itertools.count(1)


def marker_kwargs(node: pytest.Item) -> dict[str, Any]:
    """``@pytest.mark.harness`` keywords of a test, the closest marker (function over class over module) winning."""
    merged: dict[str, Any] = {}
    for mark in reversed(list(node.iter_markers("harness"))):
        if mark.args:
            raise pytest.UsageError(f"{node.nodeid}: @pytest.mark.harness takes keywords only "
                                    f"(patterns=[...], profile=..., agent=..., field=value), got {mark.args!r}")
        merged.update(mark.kwargs)
    return merged


def _spec(request: pytest.FixtureRequest, pattern: str, agent: str | None = None, profile: str | None = None,
          time_scale: float | None = None, overrides: dict[str, Any] | None = None,
          function: str | None = None) -> DeploymentSpec:
    settings = request.config.stash[SETTINGS]
    if overrides is None:
        overrides, m_agent, m_profile, _ = split_marker_kwargs(marker_kwargs(request.node))
        agent = agent or m_agent
        profile = profile or m_profile
    agent = agent or settings.agent
    if settings.source is not None:  # --harness-from: the file gives the agent, limits and env (the test's win)
        from ..sources import load_source

        # the file's env is named here too, so the reports know its secret values to redact
        function = function or settings.function
        env = {**load_source(settings.source).get(function).env, **(overrides.get("env") or {})}
        overrides = {"source": str(settings.source), "function": function, **overrides, "env": env}
        agent = agent or ""
    elif not agent:
        pytest.fail("no agent to deploy: pass --harness-agent module:callable, set harness_agent in the ini "
                    "file, or mark the test @pytest.mark.harness(agent='path/to/file.py:agent')", pytrace=False)
    if callable(agent) and not isinstance(agent, str):
        agent = f"{Path(agent.__code__.co_filename)}:{agent.__name__}"  # a function: deploy its file
    bases = (request.config.invocation_params.dir, request.config.rootpath, Path(str(request.path)).parent)
    return DeploymentSpec.make(resolve_agent_spec(str(agent), *bases), pattern,
                               profile or settings.profile_for(pattern),
                               time_scale if time_scale is not None else settings.time_scale, overrides)


def _use(request: pytest.FixtureRequest, spec: DeploymentSpec) -> Any:
    """The deployment for ``spec`` in the configured scope, tracked as used by this test."""
    registry = request.config.stash[REGISTRY]
    scope = request.config.stash[SETTINGS].scope
    if scope == "function":
        scope_id = f"function:{request.node.nodeid}"
        request.addfinalizer(lambda: registry.close(scope_id))
    else:
        scope_id = request.getfixturevalue(f"_harness_{scope}_scope")
    request.node.stash.setdefault(ATTEMPTED, []).append(spec.pattern)
    dep = registry.get(scope_id, spec)
    _track(request, spec.pattern, dep)
    return dep


def _track(request: pytest.FixtureRequest, pattern: str, dep: Any) -> None:
    # record_count()/records(since=) read only what is needed; a deployment from the make_deployment hook
    # may have only records().
    count = getattr(dep, "record_count", None)
    use = TestUse(pattern, dep, count() if count is not None else len(dep.records()))
    request.node.stash.setdefault(USES, []).append(use)

    def add_properties() -> None:
        from ..reports.junit import junit_properties
        from ..reports.redact import Redactor

        redactor = Redactor(request.config.stash[REGISTRY].secret_env_values())
        request.node.user_properties.extend(junit_properties(pattern, use.records(), redactor))

    # Registered after the scope fixture's finalizer, so it runs first: the deployment is still up.
    request.addfinalizer(add_properties)


@pytest.fixture(scope="session")
def _harness_session_scope(pytestconfig: pytest.Config) -> Iterator[str]:
    """The session's scope id; stops the session-scoped deployments at the end."""
    yield "session"
    pytestconfig.stash[REGISTRY].close("session")


@pytest.fixture(scope="module")
def _harness_module_scope(request: pytest.FixtureRequest) -> Iterator[str]:
    """A module's scope id; stops the module's deployments when its last test is done."""
    scope_id = f"module:{request.node.nodeid}"
    yield scope_id
    request.config.stash[REGISTRY].close(scope_id)


@pytest.fixture
def deployment(request: pytest.FixtureRequest) -> Any:
    """The agent deployed under one pattern; a test using it runs once per selected pattern.

    With ``--harness-from`` a file of several functions: once per function and pattern (``"NAME::pattern"``).
    """
    param = str(getattr(request, "param", None) or request.config.stash[SETTINGS].patterns[0])
    function, _, pattern = param.rpartition("::")
    return _use(request, _spec(request, pattern, function=function or None))


@pytest.fixture
def serverless(request: pytest.FixtureRequest) -> Any:
    """The agent deployed under the serverless pattern."""
    return _use(request, _spec(request, "serverless"))


@pytest.fixture
def container(request: pytest.FixtureRequest) -> Any:
    """The agent deployed under the container pattern (skipped where it is not implemented yet)."""
    return _use(request, _spec(request, "container"))


@pytest.fixture
def daemon(request: pytest.FixtureRequest) -> Any:
    """The agent deployed under the daemon pattern (skipped where it is not implemented yet)."""
    return _use(request, _spec(request, "daemon"))


@pytest.fixture
def edge(request: pytest.FixtureRequest) -> Any:
    """The agent deployed under the edge pattern (skipped where it is not implemented yet)."""
    return _use(request, _spec(request, "edge"))


@pytest.fixture
def make_deployment(request: pytest.FixtureRequest) -> Callable[..., Any]:
    """A factory: ``make_deployment(agent=None, pattern="serverless", profile=None, time_scale=None, **kw)``.

    Each call starts a new deployment (never shared), stopped when the test ends; its records go into the
    reports like any other.
    """
    registry = request.config.stash[REGISTRY]

    def factory(agent: Any = None, pattern: str = "serverless", profile: str | None = None,
                time_scale: float | None = None, **overrides: Any) -> Any:
        spec = _spec(request, pattern, agent, profile, time_scale, overrides)
        scope_id = f"factory:{request.node.nodeid}:{next(_factory_ids)}"
        request.addfinalizer(lambda: registry.close(scope_id))
        request.node.stash.setdefault(ATTEMPTED, []).append(spec.pattern)
        dep = registry.get(scope_id, spec)
        _track(request, spec.pattern, dep)
        return dep

    return factory


STANDALONE_SCALE = 0.001


@pytest.fixture
def llm_sim(request: pytest.FixtureRequest) -> Iterator[LLMSim]:
    """A running LLM simulator (OpenAI/Anthropic-compatible) with its script and call counters.

    Script: ``@pytest.mark.harness(llm_script="path.toml")``; the clock follows ``--harness-time-scale``. On
    the virtual clock (the default) a simulator on its own, with no deployment to tell real work from
    waiting, runs scaled at ``STANDALONE_SCALE`` (0.001: a 1 s answer takes 1 ms).
    """
    from .llm import LLMSim  # starlette and uvicorn load only for tests that use the simulator

    script = marker_kwargs(request.node).get("llm_script")
    if script is not None and not Path(str(script)).is_absolute():
        script = str(Path(str(request.path)).parent / str(script))
    scale = request.config.stash[SETTINGS].time_scale
    sim = LLMSim.start(script=script, time_scale=STANDALONE_SCALE if scale is None else scale)
    try:
        yield sim
    finally:
        sim.stop()
