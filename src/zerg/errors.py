"""Domain errors raised by services; transports map each to a status code or an exit code once."""


class ZergError(Exception):
    """Base of every error a user can cause; `code` is stable, the message says what and why."""

    code = "error"

    def __init__(self, detail: str, *, code: str | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        if code is not None:
            self.code = code


class NotFound(ZergError):
    code = "not_found"


class Conflict(ZergError):
    code = "conflict"


class InvalidInput(ZergError):
    code = "invalid_input"


class Forbidden(ZergError):
    code = "forbidden"


class Unauthorized(ZergError):
    code = "unauthorized"


class TooLarge(ZergError):
    code = "payload_too_large"


class TooMany(ZergError):
    """A limit on how much may be waiting or spent was reached; try again later."""

    code = "rate_limited"


class BudgetExceeded(TooMany):
    """An agent's token or cost budget is used up: a trigger is refused, a run stops."""

    code = "budget_exceeded"


class MisdirectedRequest(ZergError):
    """The request named a host this server does not serve."""

    code = "host_not_allowed"
