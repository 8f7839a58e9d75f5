"""`scripted:` models: deterministic chat models shipped with Zerg for demos, tests and benchmarks.

They make no network call. `scripted:demo` calls the first tool it was given (when it has one and
has not yet seen a tool result since the last user message), then answers with what the tool
said; `scripted:echo` repeats the last user message; `scripted:error` always fails. Every answer
reports token usage, and streaming yields one chunk per word.
"""

import json
from collections.abc import Iterator, Sequence
from typing import Any

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    BaseMessage,
    HumanMessage,
    ToolMessage,
)
from langchain_core.messages.ai import UsageMetadata
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.runnables import Runnable
from langchain_core.tools import BaseTool
from langchain_core.utils.function_calling import convert_to_openai_tool

SCRIPTED_MODELS: tuple[str, ...] = ("demo", "echo", "error")

# Arguments `scripted:demo` passes to the built-in tools it knows; others get none.
_DEMO_ARGS: dict[str, dict[str, Any]] = {
    "calculator": {"expression": "6 * 7"},
    "current_time": {"timezone": "UTC"},
    "http_get": {"url": "https://example.com/"},
}


class ScriptedModelError(RuntimeError):
    """The failure `scripted:error` produces on purpose."""


def _tokens(text: str) -> int:
    return len(text) // 4 + 1


def _text_of(message: BaseMessage) -> str:
    return message.content if isinstance(message.content, str) else str(message.content)


# Tool specs by tool object: the agent binds its tools before every model call, and a tool's
# JSON schema costs more to derive than a scripted answer. Entries keep their tool alive, so
# an id is never reused while cached; the agents' tool objects live as long as the process.
_SPECS: dict[int, tuple[Any, dict[str, Any]]] = {}
_MAX_SPECS = 1024


def _tool_spec(tool: dict[str, Any] | type | Any | BaseTool) -> dict[str, Any]:
    if not isinstance(tool, BaseTool):
        return convert_to_openai_tool(tool)
    cached = _SPECS.get(id(tool))
    if cached is None:
        if len(_SPECS) >= _MAX_SPECS:
            _SPECS.clear()
        cached = _SPECS[id(tool)] = (tool, convert_to_openai_tool(tool))
    return cached[1]


class ScriptedChatModel(BaseChatModel):
    script: str = "demo"

    @property
    def _llm_type(self) -> str:
        return "scripted"

    def bind_tools(
        self, tools: Sequence[dict[str, Any] | type | Any | BaseTool], **kwargs: Any
    ) -> Runnable[LanguageModelInput, AIMessage]:
        return self.bind(tools=[_tool_spec(tool) for tool in tools], **kwargs)

    def _reply(self, messages: list[BaseMessage], tools: list[dict[str, Any]]) -> AIMessage:
        if self.script == "error":
            raise ScriptedModelError("scripted:error always fails")
        since_user: list[BaseMessage] = []
        for message in reversed(messages):
            if isinstance(message, HumanMessage):
                break
            since_user.append(message)
        last_user = next((m for m in reversed(messages) if isinstance(m, HumanMessage)), None)
        prompt = sum(_tokens(_text_of(m)) for m in messages)
        if self.script == "echo":
            text = f"echo: {_text_of(last_user) if last_user else ''}"
            return self._answer(text, prompt)
        tool_results = [m for m in since_user if isinstance(m, ToolMessage)]
        if tools and not tool_results:
            name = tools[0]["function"]["name"]
            call = {"name": name, "args": _DEMO_ARGS.get(name, {}), "id": f"call_{len(messages)}"}
            return AIMessage(
                content="",
                tool_calls=[call],
                usage_metadata=UsageMetadata(
                    input_tokens=prompt, output_tokens=5, total_tokens=prompt + 5
                ),
            )
        if tool_results:
            text = f"The {tool_results[0].name} tool says: {_text_of(tool_results[0])}"
        else:
            text = "Done. This is a scripted answer."
        return self._answer(text, prompt)

    @staticmethod
    def _answer(text: str, prompt: int) -> AIMessage:
        out = _tokens(text)
        return AIMessage(
            content=text,
            usage_metadata=UsageMetadata(
                input_tokens=prompt, output_tokens=out, total_tokens=prompt + out
            ),
        )

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        message = self._reply(messages, kwargs.get("tools") or [])
        return ChatResult(generations=[ChatGeneration(message=message)])

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        # No I/O: answering inline beats the worker-thread hop of the default async path.
        return self._generate(messages, stop, **kwargs)

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        message = self._reply(messages, kwargs.get("tools") or [])
        if message.tool_calls:
            yield ChatGenerationChunk(
                message=AIMessageChunk(
                    content="",
                    tool_call_chunks=[
                        {
                            "name": c["name"],
                            "args": json.dumps(c["args"]),
                            "id": c["id"],
                            "index": 0,
                            "type": "tool_call_chunk",
                        }
                        for c in message.tool_calls
                    ],
                    usage_metadata=message.usage_metadata,
                )
            )
            return
        words = _text_of(message).split(" ")
        for index, word in enumerate(words):
            last = index == len(words) - 1
            chunk = AIMessageChunk(
                content=word if last else f"{word} ",
                usage_metadata=message.usage_metadata if last else None,
            )
            if run_manager:
                run_manager.on_llm_new_token(
                    _text_of(chunk), chunk=ChatGenerationChunk(message=chunk)
                )
            yield ChatGenerationChunk(message=chunk)
