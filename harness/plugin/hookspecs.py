"""The plugin's own hooks (``pytest_harness_*``), implemented in a conftest.py or another plugin.

Shaped like pytest-xdist's: the strategy (here, how a deployment is made) is chosen by a ``firstresult``
hook, and the rest are observers or let a conftest adjust the report before anything renders it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from .deployments import DeploymentSpec

__all__ = [
    "pytest_harness_deployment_closed",
    "pytest_harness_deployment_started",
    "pytest_harness_make_deployment",
    "pytest_harness_modify_report",
]


@pytest.hookspec(firstresult=True)
def pytest_harness_make_deployment(config: pytest.Config, spec: DeploymentSpec) -> Any:
    """Return a started deployment for ``spec`` (a ``harness.Deployment`` or a look-alike), or None.

    The first non-None result wins; the plugin's own implementation (``harness.deploy(**spec.kwargs())``)
    runs last. Implement it to deploy through a wrapper, a remote harness, or a fake in unit tests. The
    object must offer ``invoke``, ``records()``, ``summary()``, ``close()``, ``pattern`` and ``profile``.
    """


def pytest_harness_deployment_started(config: pytest.Config, spec: DeploymentSpec, deployment: Any) -> None:
    """Called once a deployment is up, before the first test uses it (e.g. to warm it)."""


def pytest_harness_deployment_closed(config: pytest.Config, spec: DeploymentSpec, summary: Any) -> None:
    """Called after a deployment stopped, with its final ``Summary``."""


def pytest_harness_modify_report(config: pytest.Config, report: dict[str, Any]) -> None:
    """Adjust the JSON report in place before it is shown, written and compared.

    ``report["summaries"]`` holds one summary per pattern (what the terminal table, the HTML and the
    baseline comparison read); add keys under ``report["run"]`` for your own metadata.
    """
