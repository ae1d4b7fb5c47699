"""agent-deploy-harness: run one AI agent under every production deployment pattern and compare them.

The user-facing layer: ``deploy``/``adeploy``, the records and the errors. The engine is ``emulators``.
"""

from emulators.errors import (
    AgentLoadError,
    ConfigError,
    DeploymentClosedError,
    HarnessError,
    InstanceStartError,
)
from emulators.profiles import Profile, list_profiles, load_profile
from emulators.records import OUTCOMES, Cost, Record, Result, Summary

from .api import AsyncDeployment, Deployment, TaskStatus, adeploy, deploy

__version__ = "0.1.0"

__all__ = [
    "OUTCOMES",
    "AgentLoadError",
    "AsyncDeployment",
    "ConfigError",
    "Cost",
    "Deployment",
    "DeploymentClosedError",
    "HarnessError",
    "InstanceStartError",
    "Profile",
    "Record",
    "Result",
    "Summary",
    "TaskStatus",
    "adeploy",
    "deploy",
    "list_profiles",
    "load_profile",
]
