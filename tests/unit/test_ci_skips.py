"""The CI guard in tests/conftest.py: with HARNESS_CI_NO_SKIPS set, a skip fails unless its reason allows it."""

from __future__ import annotations

from pathlib import Path

import pytest

CONFTEST = Path(__file__).resolve().parents[1] / "conftest.py"

_PLUGIN = f"""
import importlib.util
import sys
_spec = importlib.util.spec_from_file_location("adh_tests_conftest", {str(CONFTEST)!r})
_mod = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = _mod
_spec.loader.exec_module(_mod)
pytest_runtest_makereport = _mod.pytest_runtest_makereport
"""

_TESTS = """
import pytest

def test_needs_redis():
    pytest.skip("redis is not reachable on 127.0.0.1:6379")

@pytest.mark.skipif(True, reason="no pgvector on this server [allowed in CI]")
def test_needs_pgvector():
    pass

def test_plain():
    assert True
"""


def test_a_skip_fails_in_ci_unless_allowed(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    """In CI mode the service skip fails with its reason; the allowed one stays a skip."""
    pytester.makeconftest(_PLUGIN)
    pytester.makepyfile(test_sample=_TESTS)
    monkeypatch.setenv("HARNESS_CI_NO_SKIPS", "1")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, failed=1, skipped=1)
    result.stdout.fnmatch_lines(["*skipped in CI*redis is not reachable*"])


def test_skips_stay_skips_outside_ci(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without the variable, both skips are plain skips."""
    pytester.makeconftest(_PLUGIN)
    pytester.makepyfile(test_sample=_TESTS)
    monkeypatch.delenv("HARNESS_CI_NO_SKIPS", raising=False)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, skipped=2)
