"""One Locust user class per deployment pattern, each against that deployment's own HTTP gateway.

    locust -f loadtests/locustfile.py --agent fixtures/agents/echo.py:agent              # web UI at :8089
    locust -f loadtests/locustfile.py --headless --scenario fixtures/scenarios/chat.toml \\
        --patterns all --shape burst --users 20 --run-time 30s --harness-report out.json --csv out --html out.html

At test start the deployments are started in an engine host process (or attached to with
``--harness-url``); at the end the harness JSON report is written and every process is reaped. The task
mix, think time and sessions come from the ``--scenario`` file; the users' tasks live in
``harness.load.users.PatternUser``. See docs/load.md.
"""

from shapes import HarnessShape  # locust puts this file's folder on sys.path

from harness.load.users import PatternUser

__all__ = ["ContainerUser", "DaemonUser", "EdgeUser", "HarnessShape", "ServerlessUser"]


class ServerlessUser(PatternUser):
    """Scale from zero, one call per instance, idle expiry, throttling at the concurrency limit."""

    pattern = "serverless"


class ContainerUser(PatternUser):
    """Warm replicas behind a load balancer, scaled by an HPA."""

    pattern = "container"


class DaemonUser(PatternUser):
    """A queue in front of long-lived workers."""

    pattern = "daemon"


class EdgeUser(PatternUser):
    """Isolates with a CPU-time limit and a subrequest budget."""

    pattern = "edge"
