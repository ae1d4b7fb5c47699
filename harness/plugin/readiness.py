"""The ``readiness`` fixture: the ``harness readiness`` battery from a test, returning its result.

``readiness(agent=None, task=None, traffic=None, budget=None, **options)`` runs the checklist for the
agent (default: ``--harness-agent`` or the ``harness`` marker's ``agent=``) on every pattern and returns a
``harness.readiness.ReadinessResult``: ``result.item("state management", "serverless").verdict``,
``result.recommendation.choice``. Options are those of ``ReadinessOptions`` (``patterns``, ``profiles``,
``time_scale`` (default 0.001), ``calls``, ``burst``, ``tier``, ``llm_script``...).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from .deployments import resolve_agent_spec
from .fixtures import SETTINGS, marker_kwargs

__all__ = ["readiness"]


@pytest.fixture
def readiness(request: pytest.FixtureRequest) -> Callable[..., Any]:
    """A function that runs the readiness battery for an agent and returns its ``ReadinessResult``."""
    from ..readiness import ReadinessOptions, parse_budget, parse_traffic, run_readiness

    def run(agent: str | None = None, task: Any = None, traffic: str | None = None, budget: str | float | None = None,
            **options: Any) -> Any:
        spec = agent or marker_kwargs(request.node).get("agent") or request.config.stash[SETTINGS].agent
        if not spec:
            pytest.fail("no agent for readiness: pass readiness(agent='path/to/file.py:agent'), --harness-agent, "
                        "or mark the test @pytest.mark.harness(agent=...)", pytrace=False)
        bases = (request.config.invocation_params.dir, request.config.rootpath, Path(str(request.path)).parent)
        opts = ReadinessOptions(agent=resolve_agent_spec(str(spec), *bases), task={} if task is None else task,
                                traffic=parse_traffic(traffic), budget=parse_budget(budget), **options)
        return run_readiness(opts)

    return run
