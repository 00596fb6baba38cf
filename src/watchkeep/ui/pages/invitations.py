"""Accepting an invitation: ``/invite/{token}``, reached from the link an admin sent.

Anyone holding the link may view it (the token is the secret; only its digest is stored):
it names the organisation, the project and the role. A new person sets a name and a
password (the policy of ``security.passwords``) and is logged in; someone with an account
logs in first (``/login?next=/invite/{token}``) and accepts with one button, as the
invited address only. Before login the form is protected by the login form's
double-submit CSRF token; after, by the session's. Every unusable token — unknown,
used, revoked, expired — gets the same 404 page, so the page tells nothing about which.
"""

from __future__ import annotations

import secrets
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import BaseModel, Field, field_validator, model_validator
from starlette.concurrency import run_in_threadpool

from watchkeep.security import passwords
from watchkeep.security.people import InvitationInvalid, LoginRefused, PasswordRejected, UserExists
from watchkeep.store.people_tokens import Invitation
from watchkeep.ui.forms import MAX_FIELDS, Form
from watchkeep.ui.frame import render
from watchkeep.ui.session import (
    CSRF_FIELD,
    LOGIN_CSRF_COOKIE,
    cookie_name,
    csrf_ok,
    current_session,
    login_csrf_ok,
    services,
    set_cookie,
    start_session,
)

router = APIRouter(include_in_schema=False)
MAX_TOKEN = 128
EXPIRED = "The form had expired; reload the page and try again."


class NewAccount(BaseModel):
    """A new person's name and password (checked again by ``PeopleService``)."""

    display_name: str = Field(min_length=1, max_length=200)
    password: str = Field(max_length=passwords.MAX_LENGTH)
    password_again: str = Field(max_length=passwords.MAX_LENGTH)

    @field_validator("display_name")
    @classmethod
    def _name(cls, value: str) -> str:
        value = value.strip()
        if not value or not value.isprintable():
            raise ValueError("enter your name (printable characters)")
        return value

    @model_validator(mode="after")
    def _same(self) -> NewAccount:
        if self.password != self.password_again:
            raise ValueError("the two passwords differ")
        return self


def _pending(request: Request, token: str) -> Invitation | None:
    if not token or len(token) > MAX_TOKEN:
        return None
    return services(request).people.repository.pending_invitation(token)


def _page(
    request: Request,
    token: str,
    invitation: Invitation | None,
    *,
    form: Form | None = None,
    error: str = "",
    status: int = 200,
) -> Response:
    """The invitation (or the one "not valid" page, a 404), with the form its visitor needs."""
    if invitation is None:
        return render(request, "invite.html", status=404, invitation=None, token="")
    existing = services(request).people.repository.user_by_email(invitation.email) is not None
    csrf = request.cookies.get(cookie_name(request, LOGIN_CSRF_COOKIE)) or secrets.token_urlsafe(32)
    if form is not None:  # never send a password back to the browser
        form.data = {k: v for k, v in form.data.items() if not k.startswith("password")}
    response = render(
        request,
        "invite.html",
        status=status,
        csrf_token=csrf,
        invitation=invitation,
        token=token,
        existing=existing,
        form=form,
        error=error,
    )
    if current_session(request) is None:
        set_cookie(request, response, LOGIN_CSRF_COOKIE, csrf, 3600)
    return response


def _destination(request: Request, invitation: Invitation, user_id: int) -> str:
    """Where the new member lands: the project invited to, else the organisation's first."""
    if invitation.project_name is not None:
        return f"/p/{quote(invitation.project_name, safe='')}/"
    for access in services(request).people.projects_for(user_id):
        if access.organisation_id == invitation.organisation_id:
            return f"/p/{quote(access.project_name, safe='')}/"
    return "/"


@router.get("/invite/{token}", response_class=HTMLResponse)
def invitation(request: Request, token: str) -> Response:
    """What the invitation grants, and how to accept it."""
    return _page(request, token, _pending(request, token))


@router.post("/invite/{token}", response_class=HTMLResponse)
async def accept(request: Request, token: str) -> Response:
    """Accept: as the logged-in invited person, or as a new account."""
    raw = await request.form(max_fields=MAX_FIELDS, max_files=0)
    data = {k: v for k, v in raw.items() if isinstance(v, str)}
    found = await run_in_threadpool(_pending, request, token)
    session = await run_in_threadpool(current_session, request)
    if session is not None:
        if not csrf_ok(request, session.csrf_token, data.get(CSRF_FIELD)):
            return _page(request, token, found, error=EXPIRED, status=403)
        if found is None:
            return _page(request, token, None)
        try:
            await run_in_threadpool(
                services(request).people.accept_invitation, token, user_id=session.user.id
            )
        except InvitationInvalid as exc:
            return _page(request, token, found, error=exc.message, status=400)
        return RedirectResponse(_destination(request, found, session.user.id), status_code=303)
    if not login_csrf_ok(request, data.get(CSRF_FIELD)):
        return _page(request, token, found, error=EXPIRED, status=403)
    if found is None:
        return _page(request, token, None)
    data.pop(CSRF_FIELD, None)
    return await run_in_threadpool(_create_account, request, token, found, Form(data))


def _create_account(request: Request, token: str, found: Invitation, form: Form) -> Response:
    """A new account from the invitation, logged in at once."""
    account = form.validate(NewAccount)
    if account is None:
        if "form" in form.errors:  # the passwords differ (a check across fields)
            form.fail("password_again", form.errors.pop("form"))
        return _page(request, token, found, form=form, status=400)
    people = services(request).people
    try:
        user = people.accept_invitation(token, display_name=account.display_name, password=account.password)
    except PasswordRejected as exc:
        form.fail("password", "; ".join(exc.problems))
        return _page(request, token, found, form=form, status=400)
    except (InvitationInvalid, UserExists) as exc:
        message = getattr(exc, "message", "an account for this address exists: log in to accept")
        return _page(request, token, found, error=message, status=400)
    try:
        session_token, _ = people.login(
            user.email,
            account.password,
            user_agent=(request.headers.get("user-agent") or "")[:300] or None,
            address=request.client.host if request.client else None,
        )
    except LoginRefused:  # cannot happen for the account just made; send to the login page
        return RedirectResponse("/login", status_code=303)
    response = RedirectResponse(_destination(request, found, user.id), status_code=303)
    start_session(request, response, session_token)
    return response
