"""Load tests with Locust: one user class per pattern, traffic shapes, harness stats and the "Patterns" tab.

Only ``harness.load.users`` and ``harness.load.plugin`` import Locust (its import monkey-patches the process
with gevent); the rest (scenarios, shapes, stats, the engine host, ``harness load``'s runner) does not, so
the CLI can validate input and the unit tests run without gevent. See docs/load.md.
"""

from __future__ import annotations

from .scenario import Scenario, ScenarioTask, default_scenario, load_scenario
from .shapes import SHAPES, target
from .stats import HarnessStats

__all__ = ["SHAPES", "HarnessStats", "Scenario", "ScenarioTask", "default_scenario", "load_scenario", "target"]
