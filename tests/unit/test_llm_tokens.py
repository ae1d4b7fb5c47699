"""The token approximation of the LLM simulator: four characters per token, per-message overhead, tools."""

from __future__ import annotations

from emulators.llm import Message, Prompt, Reply, ToolCall, ToolSpec, tokens


def test_text_is_four_characters_per_token_rounded_up() -> None:
    """count_text is ceil(len / 4), and empty text is free."""
    assert [tokens.count_text(t) for t in ("", "a", "abcd", "abcde", "x" * 800)] == [0, 1, 1, 2, 200]


def test_split_tokens_gives_one_piece_per_token() -> None:
    """Streaming pieces join back to the text and number exactly its token count."""
    text = "The quick brown fox jumps."
    pieces = tokens.split_tokens(text)
    assert "".join(pieces) == text and len(pieces) == tokens.count_text(text)


def test_fit_text_hits_an_exact_token_count() -> None:
    """fit_text pads (by repeating) or cuts a text to exactly the asked number of tokens."""
    for n in (1, 7, 200):
        assert tokens.count_text(tokens.fit_text("Hello world", n)) == n
    assert tokens.fit_text("anything", 0) == ""


def test_prompt_tokens_count_messages_overhead_priming_and_tools() -> None:
    """Input tokens = priming + per-message overhead + text + tool-call and tool-definition JSON."""
    one = Prompt("openai", "chat.completions", "m", (Message("user", "abcd"),))
    assert one.input_tokens == tokens.REPLY_PRIMING + tokens.MESSAGE_OVERHEAD + 1
    tool = ToolSpec("add", "Add.", {"type": "object"})
    with_tool = Prompt("openai", "chat.completions", "m", (Message("user", "abcd"),), (tool,))
    assert with_tool.input_tokens == one.input_tokens + tool.tokens and tool.tokens > 0


def test_prompt_tokens_grow_with_the_conversation() -> None:
    """Each turn added to the conversation adds its tokens to the next request's prompt."""
    call = ToolCall("c1", "add", '{"a": 2, "b": 3}')
    short = Prompt("openai", "chat.completions", "m", (Message("user", "What is 2 + 3?"),))
    longer = Prompt("openai", "chat.completions", "m",
                    (*short.messages, Message("assistant", "", (call,)), Message("tool", "5", tool_name="add")))
    assert longer.input_tokens == short.input_tokens + 2 * tokens.MESSAGE_OVERHEAD + call.tokens + 1


def test_reply_tokens_and_max_tokens_cap() -> None:
    """A reply counts its text and tool calls; capped() cuts the text to max_tokens and marks it truncated."""
    reply = Reply("x" * 40, (ToolCall("c", "f", "{}"),))
    assert reply.output_tokens == 10 + 1 + 1
    capped = Reply("x" * 40).capped(4)
    assert (capped.output_tokens, capped.truncated) == (4, True)
    assert Reply("short").capped(100) == Reply("short")
