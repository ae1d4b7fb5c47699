"""ctx.memory in real deployments: it survives instance recycling (an in-process list does not), its
embeddings are metered into the record, it survives a harness restart on a durable store (SQLite file,
real PostgreSQL), and on the edge each store request is a subrequest."""

from __future__ import annotations

import contextlib
import socket
import uuid
from pathlib import Path

import psycopg
import pytest

import harness
from emulators.billing import llm_cost

pytestmark = pytest.mark.integration

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "agents"
MEMORY_AGENT = str(FIXTURES / "support_memory.py") + ":agent"
INPROCESS_AGENT = str(FIXTURES / "support_inprocess.py") + ":agent"
POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/test"
TASK = {"customer": "ada", "says": "I am on the Pro plan, billed yearly", "asks": "which plan am I on?"}


def _visit_recycle_visit(agent: str, **kw: object) -> tuple[harness.Record, harness.Record]:
    with harness.deploy(agent, timeout_s=60, **kw) as d:  # type: ignore[arg-type]
        first = d.invoke(TASK, session_id="crm-ada")
        d.advance(d.profile.idle_expiry_s + 1)  # idle past the expiry: the instance is recycled
        second = d.invoke(TASK, session_id="crm-ada")
    return first, second


def test_ctx_memory_survives_a_recycle_and_the_in_process_list_does_not() -> None:
    """After a recycle the ctx.memory agent recalls the customer's fact; the global-list agent has forgotten."""
    first, second = _visit_recycle_visit(MEMORY_AGENT)
    assert first.ok and second.ok, (first.error, second.error)
    assert second.cold_start and second.instance_id != first.instance_id
    assert second.output["remembered"] == [TASK["says"]] and second.output["visit"] == 2
    first, second = _visit_recycle_visit(INPROCESS_AGENT)
    assert first.ok and second.cold_start
    assert second.outcome == "agent_error" and "forgot customer 'ada'" in (second.error or "")


def test_embedding_tokens_and_cost_land_in_the_record() -> None:
    """A call that embeds (search, then add) records its embedding tokens, its store requests and their cost."""
    with harness.deploy(MEMORY_AGENT, timeout_s=60) as d:
        r = d.invoke(TASK, session_id="crm-1")
    assert r.ok, r.error
    assert r.memory_ops == 2  # one search, one add
    assert 0 < r.embedding_tokens < r.input_tokens  # the chat prompt's tokens are the rest
    chat_in = r.input_tokens - r.embedding_tokens
    want = llm_cost("text-embedding-3-small", r.embedding_tokens, 0) + llm_cost("gpt-4o-mini", chat_in,
                                                                               r.output_tokens)
    assert r.cost.llm_usd == pytest.approx(want)
    assert r.llm_calls == 3  # two embeddings, one chat completion


def test_a_durable_sqlite_memory_survives_a_harness_restart(tmp_path: Path) -> None:
    """Two deployments one after the other on the same memory file: the second finds the first's facts."""
    url = f"sqlite:///{tmp_path / 'support-memory.sqlite3'}"
    with harness.deploy(MEMORY_AGENT, memory=url, timeout_s=60) as d:
        assert d.invoke(TASK, session_id="a").ok
    with harness.deploy(MEMORY_AGENT, memory=url, timeout_s=60) as d:
        r = d.invoke({**TASK, "says": "unused"}, session_id="b")
    assert r.ok and r.output["remembered"] == [TASK["says"]]


def test_postgres_memory_in_plain_mode_is_shared_by_instances_and_restarts() -> None:
    """On real PostgreSQL (plain mode here) every instance and a second harness see one memory."""
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", 5432), timeout=0.5):
        ns = "tm_" + uuid.uuid4().hex[:12]
        url = f"{POSTGRES_URL}?namespace={ns}"
        try:
            first, second = _visit_recycle_visit(MEMORY_AGENT, pattern="container", memory=url)
            assert first.ok and second.ok and second.output["remembered"] == [TASK["says"]]
            with harness.deploy(MEMORY_AGENT, "daemon", memory=url, timeout_s=60) as d:
                assert d.memory_store.mode in ("postgres-plain", "pgvector")
                assert d.memory_store.count("ada") == 1
                r = d.invoke(TASK, session_id="other-session")
            # A new session (visits 0) still finds what another deployment stored: nothing added again.
            assert r.ok and r.output["remembered"] == [TASK["says"]]
        finally:
            with psycopg.connect(POSTGRES_URL, autocommit=True) as c:
                c.execute(f'DROP SCHEMA IF EXISTS "adh_{ns}" CASCADE')
        return
    pytest.skip("PostgreSQL is not reachable on 127.0.0.1:5432")


def test_memory_requests_are_edge_subrequests() -> None:
    """On the edge each store request counts against the subrequest budget, beside the LLM calls."""
    # The paid plan: importing the openai SDK takes more than the free plan's 10 ms of CPU.
    with harness.deploy(MEMORY_AGENT, "edge", "cloudflare-workers-paid") as d:
        r = d.invoke(TASK, session_id="edge-1")
        assert r.ok, r.error
        assert r.subrequests == r.llm_calls + r.memory_ops == 5
    with harness.deploy(MEMORY_AGENT, "edge", "cloudflare-workers-paid", subrequest_limit=2) as d:
        r = d.invoke(TASK, session_id="edge-2")
    assert r.outcome == "subrequest_limit"
