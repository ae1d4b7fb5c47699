"""``python -m harness.cli``: the same as the ``harness`` console script."""

from . import main

main()
