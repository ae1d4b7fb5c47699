"""The LLM-wait totals the control process publishes and an instance reads for ctx.remaining_time_ms()."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from emulators.runtime.llmtime import LLMTimeReader, LLMTimeWriter, with_llm_waits


def test_reader_sees_the_published_totals(tmp_path: Path) -> None:
    """What the writer publishes, a reader of the same file reads back."""
    path = str(tmp_path / "i.llmtime")
    w = LLMTimeWriter(path)
    r = LLMTimeReader(path)
    assert r.read() == (0.0, 0.0, 0.0, 0.0)
    w.publish(0.05, 5.0, None, 0.0)
    assert r.read() == (0.05, 5.0, 0.0, 0.0)
    w.reset()
    assert r.read() == (0.0, 0.0, 0.0, 0.0)
    w.close()


def test_ended_waits_count_at_platform_length(tmp_path: Path) -> None:
    """A wait of 50 ms wall standing for 5 platform s turns 0.06 s elapsed into 5.01 s."""
    path = str(tmp_path / "i.llmtime")
    w = LLMTimeWriter(path)
    w.publish(0.05, 5.0, None, 0.0)
    assert with_llm_waits(0.06, LLMTimeReader(path), 0.01) == pytest.approx(5.01)
    w.close()


def test_a_wait_in_progress_counts_scaled_up_to_its_length(tmp_path: Path) -> None:
    """A wait begun 20 ms ago at time_scale 0.01 counts 2 s, and never more than its announced length."""
    path = str(tmp_path / "i.llmtime")
    w = LLMTimeWriter(path)
    began = time.monotonic() - 0.02
    w.publish(0.0, 0.0, began, 10.0)
    assert with_llm_waits(0.02, LLMTimeReader(path), 0.01) == pytest.approx(2.0, abs=0.3)
    w.publish(0.0, 0.0, began, 1.0)
    assert with_llm_waits(0.02, LLMTimeReader(path), 0.01) == pytest.approx(1.0, abs=0.01)
    w.close()


def test_no_file_means_no_adjustment(tmp_path: Path) -> None:
    """An instance without an LLM endpoint (llm='off') counts its own timer unchanged."""
    assert with_llm_waits(1.5, None, 0.01) == 1.5
    assert with_llm_waits(1.5, LLMTimeReader(str(tmp_path / "missing")), 0.01) == 1.5
