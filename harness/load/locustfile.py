"""The locustfile ``harness load`` runs by default: the four pattern users and the harness shape.

``locust -f`` loads this file by path; the classes come from ``harness.load.users`` (which registers the
harness's arguments, listeners and web UI tab). ``loadtests/locustfile.py`` is the same for this repository.
"""

from harness.load.users import ContainerUser, DaemonUser, EdgeUser, HarnessShape, ServerlessUser

__all__ = ["ContainerUser", "DaemonUser", "EdgeUser", "HarnessShape", "ServerlessUser"]
