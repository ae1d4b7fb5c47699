"""SQS event batches on the daemon pattern: one invocation per batch, partial failures by Lambda's rules."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import harness
from emulators.errors import ConfigError

pytestmark = pytest.mark.integration

HANDLER = f"{Path(__file__).resolve().parents[2] / 'fixtures' / 'agents' / 'sqs_handler.py'}:handler"


def _run(tasks: list[dict[str, Any]], **overrides: Any) -> list[harness.Record]:
    """Submit a message that holds the one worker, then ``tasks`` at once; the results in order."""
    with harness.deploy(HANDLER, pattern="daemon", adapter="lambda", workers=1, event_source="sqs",
                        gateway=False, retry_backoff_s=0.01, **overrides) as d:
        first = d.submit({"hold_s": 0.5})
        ids = [d.submit(t) for t in tasks]
        d.wait(first, timeout_s=60)
        return [d.wait(i, timeout_s=60) for i in ids]


def test_only_the_messages_in_batch_item_failures_come_back() -> None:
    """With ReportBatchItemFailures the failed message is redelivered alone; the others are done at once."""
    results = _run([{"n": 1}, {"fail": True, "until": 2}, {"n": 3}, {"n": 4}], batch_size=5,
                   report_batch_item_failures=True)
    assert all(r.ok for r in results), [r.error for r in results]
    assert [r.attempts for r in results] == [1, 2, 1, 1]
    first_batch = results[0].output["batch"]
    assert len(first_batch) == 4  # the four queued messages went to the handler as one event
    assert results[1].output["batch"] == [first_batch[1]]  # the redelivery was a batch of one


def test_without_report_batch_item_failures_the_answer_is_ignored() -> None:
    """Lambda deletes the batch when the function succeeds and partial failures are not enabled."""
    results = _run([{"n": 1}, {"fail": True, "until": 2}], batch_size=5)
    assert [r.attempts for r in results] == [1, 1] and all(r.ok for r in results)


def test_a_failed_invocation_returns_the_whole_batch() -> None:
    """An error in the handler sends every message of its batch back: the good one is delivered again too."""
    results = _run([{"n": 1}, {"crash": True}], batch_size=5, max_receives=2)
    assert [r.attempts for r in results] == [2, 2]  # the good message came back with the failed batch
    # On its second delivery it succeeds alone or fails again beside the crashing one (back-offs are jittered).
    assert results[0].outcome in ("ok", "dead_lettered")
    assert results[1].outcome == "dead_lettered"


def test_batches_over_ten_are_refused() -> None:
    """A batch over one receive's 10 messages is a ConfigError saying why."""
    with pytest.raises(ConfigError, match="batching window"), \
            harness.deploy(HANDLER, pattern="daemon", adapter="lambda", event_source="sqs", batch_size=11,
                           gateway=False):
        pass
