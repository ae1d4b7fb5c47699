"""Readiness: the production checklist as experiments, a cost projection and a pattern recommendation.

``harness readiness AGENT`` (and the pytest ``readiness`` fixture) runs a short battery against every
pattern (``battery``), judges each checklist item from the records (``checks``, ``secrets``), projects
the monthly cost over traffic volumes and shapes with each profile's billing formulas (``cost``, drawn by
``chart``) and recommends the cheapest pattern and profile that meets the limits and the budget
(``recommend``). The result goes into the JSON report as its ``readiness`` section.
"""

from __future__ import annotations

from .checks import ITEMS, Item, Verdict
from .cost import TaskProfile, crossovers, monthly_compute, monthly_llm, projection
from .recommend import Recommendation
from .run import ReadinessOptions, ReadinessResult, arun_readiness, judge, run_readiness
from .traffic import LLMTier, TrafficSpec, parse_budget, parse_tier, parse_traffic

__all__ = [
    "ITEMS",
    "Item",
    "LLMTier",
    "ReadinessOptions",
    "ReadinessResult",
    "Recommendation",
    "TaskProfile",
    "TrafficSpec",
    "Verdict",
    "arun_readiness",
    "crossovers",
    "judge",
    "monthly_compute",
    "monthly_llm",
    "parse_budget",
    "parse_tier",
    "parse_traffic",
    "projection",
    "run_readiness",
]
