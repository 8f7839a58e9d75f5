"""_messages.html, the message list of the thread view, the chat and the run page: text escaped,
tool calls with their arguments, JSON output pretty-printed, long output folded."""

import json
from datetime import UTC, datetime
from html.parser import HTMLParser
from itertools import count
from types import SimpleNamespace
from typing import Any
from xml.etree.ElementTree import Element, TreeBuilder

from zerg.schemas.threads import MessageRead
from zerg.web.pages import FOLD_CHARS, FOLD_LINES, HEAD_LINES, readable, templates

_ids = count(1)
THREAD = SimpleNamespace(id=7)


def message(role: str, content: str = "", **fields: Any) -> MessageRead:
    return MessageRead.model_validate(
        {
            "id": next(_ids),
            "thread_id": THREAD.id,
            "role": role,
            "content": content,
            "tool_calls": None,
            "tool_call_id": None,
            "name": None,
            "processed": True,
            "meta": {},
            "created_at": datetime(2026, 11, 30, 12, 0, tzinfo=UTC),
            **fields,
        }
    )


class _Tree(HTMLParser):
    """The markup as an element tree (the template writes no void elements)."""

    def __init__(self) -> None:
        super().__init__()
        self.builder = TreeBuilder()
        self.builder.start("root", {})

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.builder.start(tag, {name: value or "" for name, value in attrs})

    def handle_endtag(self, tag: str) -> None:
        self.builder.end(tag)

    def handle_data(self, data: str) -> None:
        self.builder.data(data)


def html_of(*messages: MessageRead) -> str:
    return templates.env.get_template("_messages.html").render(
        messages=list(messages), thread=THREAD
    )


def rendered(*messages: MessageRead) -> Element:
    tree = _Tree()
    tree.feed(html_of(*messages))
    tree.close()
    tree.builder.end("root")
    return tree.builder.close()


def every(root: Element, tag: str, *classes: str) -> list[Element]:
    return [
        element
        for element in root.iter(tag)
        if set(classes) <= set(element.get("class", "").split())
    ]


def one(root: Element, tag: str, *classes: str) -> Element:
    [found] = every(root, tag, *classes)
    return found


def text(element: Element) -> str:
    return "".join(element.itertext())


def test_every_message_is_listed_in_order_with_the_system_one_collapsed() -> None:
    page = rendered(
        message("system", "Be brief."),
        message("user", "What is 6*7?"),
        message("assistant", "42."),
    )
    listed = one(page, "ol", "messages")
    assert listed.get("data-thread-id") == "7"
    assert [li.get("data-role") for li in listed.findall("li")] == ["system", "user", "assistant"]
    system = one(one(page, "li", "system"), "details")
    assert "open" not in system.attrib
    assert "Be brief." in text(system)
    assert text(one(one(page, "li", "user"), "div", "text")) == "What is 6*7?"
    assert text(one(one(page, "li", "assistant"), "div", "text")) == "42."


def test_message_text_is_escaped_never_markup() -> None:
    evil = '<script>alert("x")</script><b>bold</b>'
    html = html_of(message("user", evil), message("tool", evil, name="http_get"))
    assert "<script>" not in html and "<b>" not in html
    assert html.count("&lt;script&gt;") == 2
    page = rendered(message("user", evil))
    assert text(one(one(page, "li", "user"), "div", "text")) == evil


def test_a_tool_call_shows_its_tool_and_pretty_arguments() -> None:
    call = {"id": "call_1", "name": "calculator", "args": {"expression": "6 * 7", "n": [1, 2]}}
    page = rendered(message("assistant", "", tool_calls=[call]))

    shown = one(one(page, "li", "assistant"), "div", "tool-call")
    assert shown.get("data-tool-call-id") == "call_1"
    assert text(one(shown, "code", "tool-name")) == "calculator"
    assert text(one(shown, "pre", "json")) == json.dumps(call["args"], indent=2)


def test_a_json_tool_output_is_pretty_printed_and_other_output_is_left_as_it_is() -> None:
    page = rendered(
        message("tool", '{"temp": 21, "unit": "C"}', name="weather", tool_call_id="call_1"),
        message("tool", "42", name="calculator", tool_call_id="call_2"),
    )
    json_output, plain = every(page, "li", "tool")
    assert text(one(json_output, "code", "tool-name")) == "weather"
    assert text(one(json_output, "pre", "json")) == '{\n  "temp": 21,\n  "unit": "C"\n}'
    assert text(one(plain, "pre", "output")) == "42"
    assert every(page, "details", "fold") == []


def test_a_failed_tool_call_is_marked() -> None:
    failed = message("tool", "Error: bad", name="calculator", meta={"status": "error"})
    assert text(one(rendered(failed), "span", "badge", "error")) == "error"


def test_long_output_is_folded_showing_its_start() -> None:
    many_lines = "\n".join(f"line {n}" for n in range(FOLD_LINES + 10))
    page = rendered(message("tool", many_lines, name="http_get"))

    fold = one(one(page, "li", "tool"), "details", "fold")
    assert "open" not in fold.attrib
    summary = one(fold, "summary")
    head = text(one(summary, "pre", "head"))
    assert head.startswith("line 0\nline 1\n") and "line 49" not in head
    assert f"Show all {FOLD_LINES + 10} lines" in text(summary)
    [whole] = [pre for pre in fold.findall("pre")]
    assert text(whole) == many_lines


def test_long_json_is_folded_too_and_short_output_is_not() -> None:
    big = readable(json.dumps({"items": list(range(FOLD_CHARS))}))
    assert big.is_json and big.head is not None
    assert readable("x" * (FOLD_CHARS + 1)).head is not None
    assert readable("x" * FOLD_CHARS).head is None
    assert readable("\n".join("x" * FOLD_LINES)).head is None
    assert readable("\n".join("x" * (FOLD_LINES + 1))).head == "\n".join("x" * HEAD_LINES)


def test_only_objects_and_arrays_count_as_json() -> None:
    assert not readable("42").is_json
    assert not readable('"quoted"').is_json
    assert not readable("{not json").is_json
    assert readable("[1, 2]").text == "[\n  1,\n  2\n]"
    assert readable({"a": "é"}).text == '{\n  "a": "é"\n}'


def test_assistant_usage_is_shown() -> None:
    meta = {"model": "gpt-test", "input_tokens": 12, "output_tokens": 5, "latency_ms": 1234.5}
    page = rendered(message("assistant", "Hi.", meta=meta))
    usage = one(one(page, "li", "assistant"), "div", "usage")
    assert " ".join(text(usage).split()) == "gpt-test · 12 in / 5 out tokens · 1.2 s"
