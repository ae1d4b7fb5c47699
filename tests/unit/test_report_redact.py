"""Redaction: secret env values, secret-named keys and key-shaped strings are replaced; metrics are not."""

from __future__ import annotations

import pytest

from emulators.records import Record, summarize
from harness.reports import DeploymentRun, build_report
from harness.reports.redact import REDACTED, Redactor, is_secret_name, secret_values


@pytest.mark.parametrize("name", ["OPENAI_API_KEY", "api_key", "GITHUB_TOKEN", "AWS_SECRET_ACCESS_KEY",
                                  "Authorization", "x-api-key", "DB_PASSWORD", "session_token"])
def test_secret_looking_names_are_recognised(name: str) -> None:
    """Names of keys, tokens, secrets, passwords and auth headers count as secret."""
    assert is_secret_name(name)


@pytest.mark.parametrize("name", ["input_tokens", "max_tokens", "PWD", "author", "session_id", "PATH"])
def test_metric_and_ordinary_names_are_not(name: str) -> None:
    """Token counts, paths and ids are not secrets."""
    assert not is_secret_name(name)


@pytest.mark.parametrize(("text", "gone"), [
    ("Authorization: Bearer abcdefghijkl123", "abcdefghijkl123"),
    ("using sk-proj-abcdefghijklmnop1234", "abcdefghijklmnop1234"),
    ("sk-ant-api03-abcdefghijklmnopqrstuv", "abcdefghijklmnopqrstuv"),
    ("OPENAI_API_KEY=xyzxyzxyz123", "xyzxyzxyz123"),
    ('{"api_key": "abcd1234"}', "abcd1234"),
    ("AKIAABCDEFGHIJKLMNOP", "ABCDEFGHIJKLMNOP"),
    ("ghp_abcdefghijklmnopqrstuvwxyz0123", "abcdefghijklmnopqrstuvwxyz0123"),
])
def test_key_shapes_are_redacted_anywhere(text: str, gone: str) -> None:
    """Well-known key shapes are replaced wherever they appear in a string."""
    out = Redactor(include_environ=False).text(text)
    assert gone not in out and REDACTED in out


def test_known_secret_values_are_redacted_whatever_their_shape(monkeypatch: pytest.MonkeyPatch) -> None:
    """The value of a secret-named env var is replaced even when it looks like nothing in particular."""
    monkeypatch.setenv("MY_SERVICE_SECRET", "plain-looking-words")
    assert "plain-looking-words" in secret_values()
    assert Redactor().text("it was plain-looking-words") == f"it was {REDACTED}"


def test_ordinary_text_and_numbers_survive() -> None:
    """Text without secrets, token counts and numbers are left alone."""
    r = Redactor(include_environ=False)
    assert r.text("max_tokens: 100 input_tokens=5, the token limit exceeded") == (
        "max_tokens: 100 input_tokens=5, the token limit exceeded")
    assert r.value({"input_tokens": 3, "ok": True, "list": [1.5, None]}) == {"input_tokens": 3, "ok": True,
                                                                              "list": [1.5, None]}


def test_build_report_redacts_records_and_deployment_env() -> None:
    """A key from a deployment's env that an agent echoed is gone from the whole report model."""
    key = "zz-not-shaped-but-secret-0042"
    r = Record(ok=True, outcome="ok", output={"echo": key, "headers": {"Authorization": "Bearer x"}},
               events=({"note": key},), pattern="serverless", profile="p")
    report = build_report([DeploymentRun(summarize([r]), [r], {}, env={"PARTNER_API_KEY": key})])
    assert key not in str(report)
    assert report["deployments"][0]["records"][0]["output"]["headers"]["Authorization"] == REDACTED
