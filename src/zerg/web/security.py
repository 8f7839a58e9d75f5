"""Who a page or a form acts as. A form that changes something carries the page's CSRF token
in the `csrf_token` field (scripts send it as `X-CSRF-Token`), in local mode too: a page of
another site could otherwise post to a Zerg on this machine's loopback."""

from typing import Annotated

from fastapi import Depends, Request

from zerg.api.auth import CSRF_HEADER, actor_of, check_csrf, check_origin
from zerg.services.users import Actor
from zerg.web.pages import browser_secret


async def page_actor(request: Request) -> Actor:
    """The actor a page is shown to; in auth mode, without a session, the sign-in page."""
    return actor_of(request)


async def form_actor(request: Request) -> Actor:
    """The actor of a form post, once its origin and CSRF token are checked."""
    check_origin(request)
    await check_form_csrf(request)
    return actor_of(request, csrf_checked=True)


async def check_form_csrf(request: Request) -> None:
    form = await request.form()
    given = form.get("csrf_token")
    token = given if isinstance(given, str) else request.headers.get(CSRF_HEADER)
    check_csrf(browser_secret(request), token)


PageActor = Annotated[Actor, Depends(page_actor)]
FormActor = Annotated[Actor, Depends(form_actor)]
