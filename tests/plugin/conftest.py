"""The plugin tier: pytester runs small user projects through the installed plugin in a fresh pytest.

pytester itself is enabled for the whole run in pyproject's ``addopts`` (``-p pytester``): pytest accepts
``pytest_plugins`` only in a top-level conftest.
"""
