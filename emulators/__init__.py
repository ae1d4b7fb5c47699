"""The engine of agent-deploy-harness: clock, profiles, records and billing, the instance runtime, patterns.

Importable on its own; it never imports ``harness`` (the user-facing layer above it).
"""

__version__ = "0.1.0"
