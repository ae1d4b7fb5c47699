"""Traffic shapes for this repository's locustfile: ``--shape steady|burst|diurnal|ramp`` (CLI or web UI).

One ``LoadTestShape`` class reads the ``--shape`` argument rather than four classes, so the shape is a
plain field of the web UI form (several shape classes would need Locust's class picker) and the same
command line works headless. The shapes themselves are ``harness.load.shapes.target``.
"""

from harness.load.shapes import SHAPES
from harness.load.users import HarnessShape

__all__ = ["SHAPES", "HarnessShape"]
