"""What a Docker instance container runs: connect to the control process, then serve the child protocol.

``python -m emulators.runtime.docker.entry SOCKET CONFIG``: SOCKET is a unix socket the control process
listens on in the run directory (bind-mounted at the same path), CONFIG the instance's JSON config there.
It runs under the engine's init (``--init``), so the agent is not PID 1 and signals behave as on a host.
"""

from __future__ import annotations

import json
import os
import socket
import sys

from .. import child

__all__ = ["main"]


def main(argv: list[str]) -> int:
    """Connect, load the config, serve until the control process says exit or goes away."""
    sock_path, cfg_path = argv[0], argv[1]
    with open(cfg_path, encoding="utf-8") as f:
        cfg = json.load(f)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.connect(sock_path)
    child.serve(sock, cfg)
    return 0


if __name__ == "__main__":
    code = main(sys.argv[1:])
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)  # as a forked instance ends: no interpreter teardown waiting on an agent's threads
