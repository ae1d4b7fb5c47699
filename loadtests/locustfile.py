"""One Locust user class per deployment pattern, each against that deployment's own HTTP gateway.

    locust -f loadtests/locustfile.py --agent fixtures/agents/echo.py:agent              # web UI at :8089
    locust -f loadtests/locustfile.py --headless --scenario fixtures/scenarios/chat.toml \\
        --patterns all --shape burst --users 20 --run-time 30s --harness-report out.json --csv out --html out.html

At test start the deployments are started in an engine host process (or attached to with
``--harness-url``); at the end the harness JSON report is written and every process is reaped. The task
mix, think time and sessions come from the ``--scenario`` file; the user classes (one per pattern) and the
shape live in ``harness.load.users``, shared with the locustfile ``harness load`` runs. See docs/load.md.
"""

from shapes import HarnessShape  # locust puts this file's folder on sys.path

from harness.load.users import ContainerUser, DaemonUser, EdgeUser, ServerlessUser

__all__ = ["ContainerUser", "DaemonUser", "EdgeUser", "HarnessShape", "ServerlessUser"]
