"""Who may read and act: the ``MLPQ_UI_TOKEN`` sign-in, its session cookie and the CSRF token of each form.

Without a token everything is readable and nothing can be changed. With one, every page asks for it first
(or an ``Authorization: Bearer TOKEN`` header); actions also need ``--allow-actions`` and a POST that carries
the session's CSRF token from the same origin.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from starlette.exceptions import HTTPException
from starlette.requests import Request

COOKIE = "mlpq_ui_session"


class Guard:
    """Checks sessions and actions against one token."""

    def __init__(self, token: str | None, allow_actions: bool) -> None:
        if allow_actions and not token:
            raise ValueError("actions need a token")
        self.token = token
        self.allow_actions = allow_actions

    def _sign(self, message: str) -> str:
        assert self.token is not None
        return hmac.new(self.token.encode(), message.encode(), hashlib.sha256).hexdigest()

    def token_matches(self, candidate: str) -> bool:
        return self.token is not None and hmac.compare_digest(candidate.encode(), self.token.encode())

    def new_session(self) -> str:
        """A cookie value: a random nonce and its signature."""
        nonce = secrets.token_hex(16)
        return f"{nonce}.{self._sign('session:' + nonce)}"

    def session_nonce(self, request: Request) -> str | None:
        """The nonce of the request's valid session cookie, if it has one."""
        if self.token is None:
            return None
        nonce, _, signature = request.cookies.get(COOKIE, "").partition(".")
        return nonce if nonce and hmac.compare_digest(signature, self._sign("session:" + nonce)) else None

    def may_read(self, request: Request) -> bool:
        if self.token is None:
            return True
        bearer = request.headers.get("authorization", "")
        return self.session_nonce(request) is not None or (
            bearer.startswith("Bearer ") and self.token_matches(bearer.removeprefix("Bearer ")))

    def csrf_token(self, request: Request) -> str | None:
        """The token forms must send back; ``None`` when this request may not act."""
        nonce = self.session_nonce(request)
        return self._sign("csrf:" + nonce) if self.allow_actions and nonce else None

    def check_action(self, request: Request, form_token: str) -> None:
        """Raise 403 unless actions are on, the session is valid, the CSRF token matches and the origin is ours."""
        if not self.allow_actions:
            raise HTTPException(403, "actions are off: start mlpq ui with --allow-actions and MLPQ_UI_TOKEN")
        expected = self.csrf_token(request)
        if expected is None:
            raise HTTPException(403, "sign in with the token first")
        if not hmac.compare_digest(form_token.encode(), expected.encode()):
            raise HTTPException(403, "the form's CSRF token is missing or wrong: reload the page and try again")
        origin = request.headers.get("origin")
        if origin is not None and origin != f"{request.url.scheme}://{request.url.netloc}":
            raise HTTPException(403, "request from another origin refused")
