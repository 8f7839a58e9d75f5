"""Requests take a turn on the event loop before they are handled, ahead of the runs (see
`zerg.agents.turns`): a burst of triggers, or of clients opening event streams, is served first
and in order, and the runs it started go on after."""

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from zerg.agents.turns import Priority, give_up_turn, turn, waiting

# The health check takes no turn: it must answer while the loop is busy, and costs nothing.
_UNGATED_PATHS = frozenset({"/health"})


class RequestTurns:
    """Pure ASGI middleware: a request holds a turn until its answer starts, except while it
    waits for its body (or, with `?wait=true`, for its run)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in _UNGATED_PATHS:
            await self.app(scope, receive, send)
            return

        async def read() -> Message:
            async with waiting():  # a slow client must not hold a turn while it sends
                return await receive()

        async def answer(message: Message) -> None:
            if message["type"] == "http.response.start":
                give_up_turn()  # what is left is sending it
            await send(message)

        async with turn(Priority.REQUEST):
            await self.app(scope, read, answer)
