"""Posted forms: read into the API's own schemas, with their errors as one message per field,
so that a page shows each next to its input and the rules stay the API's."""

from collections.abc import Mapping
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Request
from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails
from starlette.datastructures import FormData

from zerg.errors import ZergError

Schema = TypeVar("Schema", bound=BaseModel)
# The key of an error that belongs to no one field (shown at the top of the form).
FORM = "__form__"
FieldErrors = dict[str, str]


async def posted_form(request: Request) -> FormData:
    """The request's form, parsed once (the CSRF check reads it too), for sync handlers."""
    return await request.form()


PostedForm = Annotated[FormData, Depends(posted_form)]


def text(form: FormData, name: str, *, blank_is_none: bool = False) -> str | None:
    """A text field as typed, with a textarea's CRLF line ends made LF (browsers post CRLF)."""
    value = form.get(name)
    value = value.replace("\r\n", "\n") if isinstance(value, str) else ""
    return None if blank_is_none and not value.strip() else value


def parse(schema: type[Schema], data: Mapping[str, Any]) -> tuple[Schema | None, FieldErrors]:
    """`data` validated as `schema`, or None and the message for each field that failed."""
    try:
        return schema.model_validate(dict(data)), {}
    except ValidationError as exc:
        return None, field_errors(exc)


def field_errors(exc: ValidationError) -> FieldErrors:
    """The first message for each top-level field (a list item's error is its list's)."""
    errors: FieldErrors = {}
    for error in exc.errors():
        key = str(error["loc"][0]) if error["loc"] else FORM
        errors.setdefault(key, _message(error))
    return errors


def _message(error: ErrorDetails) -> str:
    if error["type"] in ("missing", "string_too_short") and (
        error["type"] == "missing" or (error.get("ctx") or {}).get("min_length") == 1
    ):
        return "Required."
    message = error["msg"].removeprefix("Value error, ")
    return message[:1].upper() + message[1:]


def domain_errors(exc: ZergError, fields_by_code: Mapping[str, str]) -> FieldErrors:
    """A service's refusal as a field's error when its code names one, else the form's."""
    detail = exc.detail[:1].upper() + exc.detail[1:]
    return {fields_by_code.get(exc.code, FORM): detail}
