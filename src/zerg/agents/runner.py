"""AgentRunner: runs an agent's LangGraph ReAct loop over a thread, the thread as checkpoint.

Every assistant and tool message is committed the moment it is produced; the last answer commits
with the end of the turn (the thread's pending messages marked processed, and whatever the
caller records then, such as the run's outcome). A run that stops half way (a crash, a restart)
is resumed by calling `run_thread` again on the same thread: it re-reads the stored messages,
runs only the tool calls still unanswered, and calls the model only when the thread's last
message needs an answer — so no completed model or tool call is repeated.
"""

import asyncio
import contextvars
import functools
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import langsmith
from langchain.agents import create_agent
from langchain.agents.middleware import (
    AgentMiddleware,
    ModelRequest,
    ModelResponse,
    ToolCallRequest,
    ToolErrorMiddleware,
)
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import (
    AIMessage,
    BaseMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
)
from langchain_core.runnables import RunnableConfig
from langchain_core.tools import BaseTool, ToolException
from langgraph.types import Command, StreamMode
from sqlalchemy import Connection, bindparam, select

from zerg.agents.models import chat_model
from zerg.agents.pricing import cost_usd
from zerg.agents.scripted import ScriptedChatModel
from zerg.agents.tools import HttpGetPolicy, McpPolicy, McpToolset, build_tools
from zerg.agents.tools.mcp import mcp_toolset
from zerg.agents.turns import waiting
from zerg.db import Database
from zerg.models import messages_table
from zerg.schemas.threads import MessageRead, ThreadRead
from zerg.services.threads import ThreadService
from zerg.settings import Settings

logger = logging.getLogger(__name__)

DEFAULT_MAX_STEPS = 50

_STORED_MESSAGES = (
    select(messages_table.c.role, messages_table.c.content, messages_table.c.tool_calls)
    .add_columns(messages_table.c.tool_call_id, messages_table.c.name)
    .where(messages_table.c.thread_id == bindparam("thread_id"))
    .order_by(messages_table.c.id)
)


class RunnableAgent(Protocol):
    """What a runner needs of an agent (an `Agent` row, or the task-run path's snapshot)."""

    @property
    def model(self) -> str: ...

    @property
    def config(self) -> dict[str, Any] | None: ...

    @property
    def tools(self) -> list[str] | None: ...


@dataclass
class RunUsage:
    """Token usage and cost summed over the model calls of one `run_thread`."""

    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float | None = 0.0
    messages: list[MessageRead] = field(default_factory=list)

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    def add(self, input_tokens: int, output_tokens: int, cost: float | None) -> None:
        self.input_tokens += input_tokens
        self.output_tokens += output_tokens
        # One unknown price makes the total unknown: a partial sum would under-report.
        self.cost_usd = None if cost is None or self.cost_usd is None else self.cost_usd + cost

    def totals(self) -> dict[str, Any]:
        """The totals as a run records them (`run_records.usage_of_thread`'s shape)."""
        return {
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "total_tokens": self.total_tokens,
            "cost_usd": self.cost_usd,
        }


# What ends a turn, in the transaction of its last answer: given the connection and the
# turn's usage (None: not known); what it returns runs once that has committed.
Finish = Callable[[Connection, RunUsage | None], Callable[[], None] | None]


def _tool_error(exc: Exception, request: ToolCallRequest) -> str:
    """A failing tool becomes a tool message the model can read; the run goes on."""
    return f"Error: tool {request.tool_call['name']} failed: {type(exc).__name__}: {exc}"


async def _answer_tool_call(tools: dict[str, BaseTool], call: dict[str, Any]) -> ToolMessage:
    """The tool message answering `call`: the tool's output, or its error as in the graph."""
    name = call["name"]
    try:
        tool = tools.get(name)
        if tool is None:
            raise ToolException(f"{name} is not one of the agent's tools ({', '.join(tools)})")
        result = await tool.ainvoke({**call, "type": "tool_call"})
    except Exception as exc:
        content = f"Error: tool {name} failed: {type(exc).__name__}: {exc}"
        return ToolMessage(content=content, tool_call_id=call["id"], name=name, status="error")
    if isinstance(result, ToolMessage):
        return result
    return ToolMessage(content=str(result), tool_call_id=call["id"], name=name)


def to_langchain(message: Any) -> BaseMessage:
    """A stored message (anything with the `messages` columns as attributes) for the model."""
    if message.role == "system":
        return SystemMessage(content=message.content)
    if message.role == "user":
        return HumanMessage(content=message.content)
    if message.role == "assistant":
        calls = [
            {"id": c["id"], "name": c["name"], "args": c.get("args", {}), "type": "tool_call"}
            for c in message.tool_calls or []
        ]
        return AIMessage(content=message.content, tool_calls=calls)
    return ToolMessage(
        content=message.content, tool_call_id=message.tool_call_id or "", name=message.name
    )


def unanswered_tool_calls(messages: Sequence[BaseMessage]) -> list[dict[str, Any]]:
    """Tool calls of the last assistant message that have no tool message yet."""
    for index in range(len(messages) - 1, -1, -1):
        message = messages[index]
        if isinstance(message, AIMessage):
            answered = {m.tool_call_id for m in messages[index + 1 :] if isinstance(m, ToolMessage)}
            return [dict(c) for c in message.tool_calls if c["id"] not in answered]
        if isinstance(message, HumanMessage):
            return []
    return []


async def _inline_aio_to_thread(
    _default: Any, ctx: contextvars.Context, func: Callable[..., Any], /, *args: Any, **kwargs: Any
) -> Any:
    return ctx.run(func, *args, **kwargs)


def run_tracing_hooks_inline() -> None:
    """LangChain wraps every middleware hook in LangSmith's `traceable`, whose start and end
    hooks each hop to a worker thread even when tracing is off: six hops in a 2-call run, a
    fifth of its latency. The hooks only do context bookkeeping (a trace, when enabled, is sent
    by LangSmith's own background thread), so run them inline through LangSmith's documented
    runtime override. Called once by the entry point that executes runs."""
    langsmith.set_runtime_overrides(aio_to_thread=_inline_aio_to_thread)


@dataclass(frozen=True)
class _RunContext:
    """Per-run values the cached graph reads at call time."""

    model: BaseChatModel
    # Runs before every model call; raising (e.g. `BudgetExceeded`) stops the run there.
    before_model_call: Callable[[], None] | None = None


class _RunModel(AgentMiddleware[Any, _RunContext, Any]):
    """Calls the run's own model: one compiled graph then serves every agent with the same
    tools, whatever its model, base URL or key (compiling a graph costs more than a run's
    own bookkeeping)."""

    async def awrap_model_call(
        self,
        request: ModelRequest[_RunContext],
        handler: Callable[[ModelRequest[_RunContext]], Awaitable[ModelResponse[Any]]],
    ) -> ModelResponse[Any]:
        context = request.runtime.context
        if context.before_model_call is not None:
            context.before_model_call()
        async with waiting():  # the run's turn on the loop goes to another run meanwhile
            return await handler(request.override(model=context.model))

    async def awrap_tool_call(
        self,
        request: ToolCallRequest,
        handler: Callable[[ToolCallRequest], Awaitable[ToolMessage | Command[Any]]],
    ) -> ToolMessage | Command[Any]:
        async with waiting():
            return await handler(request)


@functools.lru_cache(maxsize=64)
def _agent_graph(
    tool_names: tuple[str, ...], http_policy: HttpGetPolicy | None, mcp: McpToolset | None = None
) -> Any:
    """The ReAct graph for a set of tools (the built-in ones named, and the listed MCP servers'
    tools: a new listing is a new graph); the model is supplied per run (`_RunModel`)."""
    return create_agent(
        # Never called: `_RunModel` swaps in the run's model before every call.
        ScriptedChatModel(script="echo"),
        tools=build_tools(tool_names, http_policy=http_policy, mcp=mcp),
        middleware=[_RunModel(), ToolErrorMiddleware(on_error=_tool_error)],
        context_schema=_RunContext,
    )


class AgentRunner:
    """Runs one agent over one thread. Create one per run; it holds no state between runs."""

    def __init__(
        self,
        agent: RunnableAgent,
        *,
        settings: Settings,
        http_policy: HttpGetPolicy | None = None,
        on_message: Callable[[Connection, MessageRead], Callable[[], None]] | None = None,
        on_token: Callable[[str], None] | None = None,
        before_model_call: Callable[[], None] | None = None,
    ) -> None:
        """`on_message(connection, message)` runs in the transaction that stores each message
        (to record its event there); what it returns runs once that has committed.
        `on_token(text)` gets the model's tokens as they come when `run_thread` streams.
        `before_model_call()` runs before each model call (after the messages before it are
        stored); what it raises ends `run_thread` with no further call (a budget's stop)."""
        self.agent = agent
        self.settings = settings
        self.model_name = agent.model
        self.config = dict(agent.config or {})
        self.tool_names = tuple(agent.tools or [])
        self.http_policy = http_policy
        self.on_message = on_message
        self.on_token = on_token
        self._mcp: McpToolset | None = None
        self.before_model_call = before_model_call

    async def run_thread(
        self,
        db: Database,
        thread: ThreadRead,
        *,
        stream: bool = False,
        messages: Sequence[Any] | None = None,
        finish: Finish | None = None,
    ) -> RunUsage:
        """Run the agent until it answers without tool calls; returns what this call used.

        Each message is committed in its own transaction the moment it is produced (the thread
        is the checkpoint), and no connection is held while the model or a tool is awaited.
        The last answer commits with the end of the turn: the pending user message marked
        processed and `finish(connection, usage)`, which records what ends the turn for the
        caller (`usage`: what this call used, the last answer included; what it returns runs
        once that has committed). With `stream`, tokens go to `on_token`. `messages` are the
        thread's messages when the caller has them (a thread it just started): they are not
        read again.
        """
        usage = RunUsage()
        if messages is None:
            messages = self._stored(db, thread.id)
        history = [to_langchain(m) for m in messages]
        pending = unanswered_tool_calls(history)
        if pending:
            history += await self._answer_pending_tools(db, thread, pending, usage)
        ended = False
        if not self._finished(history):
            ended = await self._run_graph(db, thread, history, usage, stream, finish)
        if not ended:  # resumed after its last answer, or the graph ended another way
            after_commit = None
            with db.transaction() as connection:
                ThreadService.finish_turn(connection, thread.id)
                if finish is not None:
                    after_commit = finish(connection, usage)
            if after_commit is not None:
                after_commit()
        return usage

    async def _run_graph(
        self,
        db: Database,
        thread: ThreadRead,
        history: list[BaseMessage],
        usage: RunUsage,
        stream: bool,
        finish: Finish | None,
    ) -> bool:
        """Run the graph over `history`; True once the turn ended with its last answer."""
        model = await chat_model(self.model_name, self.config, self.settings)
        graph = _agent_graph(self.tool_names, self.http_policy, await self._mcp_tools())
        limit = self._step_limit()
        modes: list[StreamMode] = ["updates", "messages"] if stream else ["updates"]
        config: RunnableConfig = {"recursion_limit": limit * 2 + 1}
        state: Any = {"messages": history}
        mark = time.monotonic()
        context = _RunContext(model=model, before_model_call=self.before_model_call)
        ended = False
        async for mode, payload in graph.astream(state, config, context=context, stream_mode=modes):
            if mode == "messages":
                self._emit_token(payload)
                continue
            assert isinstance(payload, dict)
            for node, update_ in payload.items():
                for message in (update_ or {}).get("messages", []):
                    latency_ms = (time.monotonic() - mark) * 1000
                    # The answer without tool calls ends the loop, and with it the turn.
                    last = not ended and isinstance(message, AIMessage) and not message.tool_calls
                    self._persist(
                        db, thread, message, usage, latency_ms, node, ends_turn=last, finish=finish
                    )
                    ended = ended or last
                mark = time.monotonic()
        return ended

    async def _mcp_tools(self) -> McpToolset | None:
        """The tools of the agent's MCP servers, listed (or found cached) once per runner;
        raises `McpServerError` naming a server that does not start or answer."""
        servers = self.config.get("mcp_servers")
        if self._mcp is None and servers:
            policy = McpPolicy(
                http=self.http_policy or HttpGetPolicy(), stdio=self.settings.mcp_stdio != "off"
            )
            async with waiting():  # servers may take seconds to start
                self._mcp = await mcp_toolset(servers, policy)
        return self._mcp

    def _step_limit(self) -> int:
        """The agent's max_steps, within the server's ceiling: an agent stored before the
        operator lowered ZERG_MAX_AGENT_STEPS gets no more than the ceiling."""
        steps = int(self.config.get("max_steps", DEFAULT_MAX_STEPS))
        return max(1, min(steps, self.settings.max_agent_steps))

    @staticmethod
    def _stored(db: Database, thread_id: int) -> Sequence[Any]:
        with db.transaction() as connection:
            return connection.execute(_STORED_MESSAGES, {"thread_id": thread_id}).all()

    @staticmethod
    def _finished(history: Sequence[BaseMessage]) -> bool:
        last = history[-1] if history else None
        return isinstance(last, AIMessage) and not last.tool_calls

    async def _answer_pending_tools(
        self,
        db: Database,
        thread: ThreadRead,
        pending: list[dict[str, Any]],
        usage: RunUsage,
    ) -> list[BaseMessage]:
        """Resume: run only the tool calls a previous attempt left unanswered (the tools
        built and the MCP servers listed anew), each answered as the graph would."""
        mcp = await self._mcp_tools()
        tools = build_tools(self.tool_names, http_policy=self.http_policy, mcp=mcp)
        by_name = {tool.name: tool for tool in tools}
        async with waiting():
            answers = await asyncio.gather(*(_answer_tool_call(by_name, c) for c in pending))
        produced: list[BaseMessage] = list(answers)
        for message in produced:
            self._persist(db, thread, message, usage, None, "tools")
        return produced

    def _persist(
        self,
        db: Database,
        thread: ThreadRead,
        message: BaseMessage,
        usage: RunUsage,
        latency_ms: float | None,
        node: str,
        *,
        ends_turn: bool = False,
        finish: Finish | None = None,
    ) -> None:
        """Commit `message`; when it `ends_turn`, the turn ends in the same transaction (see
        `run_thread`)."""
        fields: dict[str, Any]
        if isinstance(message, AIMessage):
            calls = [
                {"id": c["id"], "name": c["name"], "args": c["args"]} for c in message.tool_calls
            ]
            meta = self._model_meta(message, usage, latency_ms)
            fields = {"role": "assistant", "tool_calls": calls or None, "meta": meta}
        elif isinstance(message, ToolMessage):
            meta = {"status": message.status}
            if latency_ms is not None:
                meta["latency_ms"] = round(latency_ms, 2)
            fields = {
                "role": "tool",
                "tool_call_id": message.tool_call_id,
                "name": message.name,
                "meta": meta,
            }
        else:
            logger.debug("ignoring %s from node %s", type(message).__name__, node)
            return
        after_commit: list[Callable[[], None]] = []
        with db.transaction() as connection:
            stored = ThreadService.add_message(
                connection, thread.id, content=message.text, **fields
            )
            if self.on_message:
                after_commit.append(self.on_message(connection, stored))
            if ends_turn:
                ThreadService.finish_turn(connection, thread.id)
                finished = finish(connection, usage) if finish is not None else None
                if finished is not None:
                    after_commit.append(finished)
        usage.messages.append(stored)
        for publish in after_commit:
            publish()

    def _model_meta(
        self, message: AIMessage, usage: RunUsage, latency_ms: float | None
    ) -> dict[str, Any]:
        tokens: dict[str, Any] = dict(message.usage_metadata or {})
        input_tokens = int(tokens.get("input_tokens", 0))
        output_tokens = int(tokens.get("output_tokens", 0))
        cost = cost_usd(self.model_name, input_tokens, output_tokens)
        usage.add(input_tokens, output_tokens, cost)
        meta: dict[str, Any] = {
            "model": self.model_name,
            "input_tokens": input_tokens,
            "output_tokens": output_tokens,
            "cost_usd": cost,
        }
        if latency_ms is not None:
            meta["latency_ms"] = round(latency_ms, 2)
        return meta

    def _emit_token(self, payload: Any) -> None:
        chunk, _meta = payload
        if self.on_token and isinstance(chunk, AIMessage) and chunk.text:
            self.on_token(chunk.text)
