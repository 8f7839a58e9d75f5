"""`openai:` models: LangChain's ChatOpenAI, with the conversation handed to the SDK as it is.

The OpenAI SDK walks every request body against its parameter types before sending it
(`async_maybe_transform`), with the event loop held: for each message, each member of the
message-type union in turn. For chat completions the walk changes nothing — the parameter types
declare no key aliases or formats, and LangChain already builds plain JSON dicts — yet it was a
tenth of the server's CPU for a two-call run, and it grows with the conversation. The SDK's
`extra_body` is merged into the body after that walk, so the messages and tools go there; the
bytes sent are the same.
"""

from typing import Any

from langchain_core.language_models import LanguageModelInput
from langchain_openai import ChatOpenAI

# Already JSON, as LangChain builds them: sent without the SDK's walk.
_PASSED_THROUGH = ("messages", "tools")


class WireChatOpenAI(ChatOpenAI):
    """ChatOpenAI whose chat-completions requests pass their messages and tools through."""

    def _get_request_payload(
        self,
        input_: LanguageModelInput,
        *,
        stop: list[str] | None = None,
        **kwargs: Any,
    ) -> dict[str, Any]:
        payload: dict[str, Any] = super()._get_request_payload(input_, stop=stop, **kwargs)
        # The Responses API builds `input` instead; structured output (`response_format`)
        # goes through `parse`, which reads the tools it is given.
        if "messages" not in payload or "response_format" in payload:
            return payload
        passed = {key: payload.pop(key) for key in _PASSED_THROUGH if key in payload}
        # A key the agent's own extra_body sets still wins, as it would in the SDK's merge.
        payload["extra_body"] = {**passed, **(payload.get("extra_body") or {})}
        payload["messages"] = []  # required by `create`; replaced by the merge
        return payload
