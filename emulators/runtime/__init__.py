"""The instance runtime: instance processes forked from a zygote, their channel, limits and measurements."""

from .agent import AgentRef, detect_adapter, load_callable, resolve_agent
from .instance import Instance, InstanceFailure, StartInfo
from .spawner import Spawner

__all__ = [
    "AgentRef",
    "Instance",
    "InstanceFailure",
    "Spawner",
    "StartInfo",
    "detect_adapter",
    "load_callable",
    "resolve_agent",
]
