"""``mlpq ui``'s web app: HTML pages, the JSON endpoints they poll, sign-in and the cancel/rerun actions.

Every value from the ledger goes through Jinja's autoescaping; every failure is a page (or, under ``/api``,
a JSON object) with one line. ``GET /api`` lists the JSON endpoints (``API``).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import jinja2
from pydantic import ValidationError
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from mlpq.api_cli.api import Client
from mlpq.api_cli.sweep import MAX_SWEEP_JOBS
from mlpq import kinds
from mlpq.db.records import JobRecord
from mlpq.db.status import JobStatus
from mlpq.devices import DeviceError, parse_device
from mlpq.errors import UnavailableError, classify
from mlpq.redact import cut, one_line, printable
from mlpq.ui import charts, data, downloads
from mlpq.ui.auth import COOKIE, Guard
from mlpq.ui.hosts import AllowedHosts

log = logging.getLogger(__name__)

HERE = Path(__file__).parent
PAGE_SIZE = 50
MAX_API_LIMIT = 10_000
WHOLE_NUMBER = re.compile(r"[0-9]{1,12}")
"""A query's number: ASCII digits only (``str.isdigit`` also takes ``²`` and ``٣``), bounded before ``int()``."""
MAX_CHARTED = 24
"""A sweep's chart overlays at most this many members (each is one more ledger read per refresh)."""
POLL_MS = 1500
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                               "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}
API = {
    "GET /api": "this list",
    "GET /api/jobs?kind=&status=&device=&sweep=&limit=20&offset=0": "mlpq results --format json",
    "GET /api/jobs/{id}": "mlpq show --json",
    "GET /api/jobs/{id}/chart": "the job's chart: {kind, done, panels: [{title, x, y, series: [{label, group, "
                                "dashed, legend, points: [[x, y], ...]}], contours?, minima?}]}",
    "GET /api/jobs/{id}/artifacts": "mlpq artifacts --json, each with its download url",
    "GET /api/sweeps/{id}": "mlpq compare --sweep ID --format json",
    "GET /api/sweeps/{id}/chart": "the sweep's overlay chart, as /api/jobs/{id}/chart",
    "GET /api/workers": "mlpq workers --json",
}


class UI:
    """The app's routes, bound to one client and one guard."""

    def __init__(self, client: Client, guard: Guard, debug: bool = False) -> None:
        self.client = client
        self.guard = guard
        self.debug = debug
        self.templates = jinja2.Environment(loader=jinja2.FileSystemLoader(HERE / "templates"), autoescape=True,
                                            undefined=jinja2.StrictUndefined)

    def render(self, request: Request, name: str, status_code: int = 200, **context: Any) -> HTMLResponse:
        context.update(request=request, guard=self.guard, signed_in=self.guard.session_nonce(request) is not None,
                       csrf=self.guard.csrf_token(request), poll_ms=POLL_MS)
        return HTMLResponse(self.templates.get_template(name).render(context), status_code=status_code)

    # Query parameters, checked into one-line 400s.

    def filters(self, request: Request) -> dict[str, str | None]:
        query = request.query_params
        kind, status = query.get("kind") or None, query.get("status") or None
        device, sweep = query.get("device") or None, query.get("sweep") or None
        if kind is not None and kind not in kinds.declared():
            raise HTTPException(400, f"unknown kind {kind[:40]!r}: use one of {', '.join(kinds.names())}")
        if status is not None and status not in {s.value for s in JobStatus}:
            raise HTTPException(400, f"unknown status {status[:40]!r}: use one of "
                                     f"{', '.join(s.value for s in JobStatus)}")
        if device is not None:
            try:
                device = str(parse_device(device))
            except DeviceError as exc:
                raise HTTPException(400, str(exc)) from None
        return {"kind": kind, "status": status, "device": device, "sweep": sweep}

    @staticmethod
    def number(request: Request, name: str, default: int, low: int, high: int) -> int:
        raw = request.query_params.get(name)
        if raw is None or raw == "":
            return default
        if WHOLE_NUMBER.fullmatch(raw) is None or not low <= int(raw) <= high:
            raise HTTPException(400, f"{name} must be a whole number from {low} to {high}")
        return int(raw)

    # Pages (plain functions: Starlette runs them in a thread, so ledger reads do not block the loop).

    def jobs(self, request: Request) -> Response:
        filters = self.filters(request)
        page = self.number(request, "page", 1, 1, 1_000_000)
        found = self.client.list(**filters, limit=PAGE_SIZE + 1, offset=(page - 1) * PAGE_SIZE)
        shown = {k: v for k, v in filters.items() if v}
        links = {"prev": f"/jobs?{urlencode({**shown, 'page': page - 1})}" if page > 1 else None,
                 "next": f"/jobs?{urlencode({**shown, 'page': page + 1})}" if len(found) > PAGE_SIZE else None}
        name = "job_rows.html" if request.query_params.get("partial") else "jobs.html"
        return self.render(request, name, rows=data.job_rows(found[:PAGE_SIZE]), filters=filters, page=page,
                           links=links, kinds=kinds.names(), statuses=[s.value for s in JobStatus],
                           live_url=f"/jobs?{urlencode({**shown, 'page': page, 'partial': 1})}")

    def job(self, request: Request) -> Response:
        page = data.job_page(self.client.get(request.path_params["job_id"]))
        name = "job_detail.html" if request.query_params.get("partial") else "job.html"
        kept = downloads.artifact_rows(self.client.artifacts(page["id"]))
        return self.render(request, name, job=page, artifacts=kept)

    def artifact(self, request: Request) -> Response:
        return downloads.download(self.client, request.path_params["job_id"], request.path_params["name"])

    def sweep(self, request: Request) -> Response:
        sweep_id = request.path_params["sweep_id"]
        members = self.sweep_members(sweep_id)
        name = "sweep_table.html" if request.query_params.get("partial") else "sweep.html"
        return self.render(request, name, sweep_id=sweep_id, sweep=data.sweep_page(members),
                           charted=min(len(members), MAX_CHARTED), members=len(members))

    def workers(self, request: Request) -> Response:
        try:
            rows, error = data.worker_rows(self.client.workers()), None
        except UnavailableError as exc:
            rows, error = [], str(exc)
        name = "worker_rows.html" if request.query_params.get("partial") else "workers.html"
        return self.render(request, name, rows=rows, error=error)

    async def login(self, request: Request) -> Response:
        target = safe_next(request.query_params.get("next"))
        if self.guard.token is None:
            return RedirectResponse(target, status_code=303)  # nothing to sign in to
        if request.method == "GET":
            return self.render(request, "login.html", next=target, wrong=False)
        form = await request.form()
        if not self.guard.token_matches(str(form.get("token", ""))):
            return self.render(request, "login.html", status_code=401, next=safe_next(str(form.get("next", ""))),
                               wrong=True)
        response = RedirectResponse(safe_next(str(form.get("next", ""))), status_code=303)
        response.set_cookie(COOKIE, self.guard.new_session(), httponly=True, samesite="strict",
                            secure=request.url.scheme == "https")
        return response

    async def logout(self, request: Request) -> Response:
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(COOKIE)
        return response

    # Actions.

    async def cancel(self, request: Request) -> Response:
        await self.check_action(request)
        job, _outcome = await run_in_threadpool(self.client.cancel, request.path_params["job_id"])
        return RedirectResponse(f"/jobs/{job.id}", status_code=303)

    async def rerun(self, request: Request) -> Response:
        await self.check_action(request)
        job_id = request.path_params["job_id"]
        try:
            job = await run_in_threadpool(self.client.rerun, job_id)
        except (ValidationError, kinds.UnknownKindError) as exc:
            raise HTTPException(422, f"job {job_id} cannot be run again by this mlpq: {problem(exc)}") from None
        return RedirectResponse(f"/jobs/{job.id}", status_code=303)

    async def check_action(self, request: Request) -> None:
        form = await request.form()
        self.guard.check_action(request, str(form.get("csrf", "")))

    # JSON.

    def api_jobs(self, request: Request) -> Response:
        found = self.client.list(**self.filters(request), limit=self.number(request, "limit", 20, 1, MAX_API_LIMIT),
                                 offset=self.number(request, "offset", 0, 0, 10**9))
        return JSONResponse(data.jobs_json(found))

    def api_job(self, request: Request) -> Response:
        return JSONResponse(data.job_json(self.client.get(request.path_params["job_id"])))

    def api_job_artifacts(self, request: Request) -> Response:
        return JSONResponse(downloads.artifacts_json(self.client.artifacts(request.path_params["job_id"])))

    def api_job_chart(self, request: Request) -> Response:
        return JSONResponse(charts.chart([self.client.get(request.path_params["job_id"])]))

    def api_sweep(self, request: Request) -> Response:
        return JSONResponse(data.sweep_json(self.sweep_members(request.path_params["sweep_id"])))

    def api_sweep_chart(self, request: Request) -> Response:
        members = self.sweep_members(request.path_params["sweep_id"])[:MAX_CHARTED]
        return JSONResponse(charts.chart([self.client.get(job.id) for job in members]))

    def api_workers(self, request: Request) -> Response:
        return JSONResponse(data.workers_json(self.client.workers()))

    def sweep_members(self, sweep_id: str) -> list[JobRecord]:
        members = list(self.client.list(sweep=sweep_id, limit=MAX_SWEEP_JOBS))
        if not members:
            raise HTTPException(404, f"no jobs in a sweep {sweep_id[:40]}")
        return members[::-1]

    # Errors: one line, never a traceback.

    async def error(self, request: Request, exc: Exception) -> Response:
        """The failure as a page (or JSON under /api), logged in one line; with a traceback only in debug."""
        status, message = error_status(exc)
        traceback = exc if self.debug and not isinstance(exc, HTTPException) else None
        log.log(logging.ERROR if status >= 500 else logging.INFO, "%s",
                printable(f"{request.method} {cut(request.url.path)}: {status} {message}"), exc_info=traceback)
        if is_api(request.url.path):
            return JSONResponse({"error": message}, status_code=status)
        return self.render(request, "error.html", status_code=status, message=message)


def is_api(path: str) -> bool:
    return path == "/api" or path.startswith("/api/")


def problem(exc: ValidationError | kinds.UnknownKindError) -> str:
    """The first thing wrong with stored parameters, in one line (``lr: Input should be greater than 0``)."""
    if isinstance(exc, kinds.UnknownKindError):
        return one_line(str(exc))
    error = exc.errors()[0]
    where = ".".join(str(part) for part in error["loc"])
    return one_line(f"{where}: {error['msg']}" if where else error["msg"])


def safe_next(target: str | None) -> str:
    """A local path to go back to after signing in, never another site."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/jobs"
    return target


def error_status(exc: Exception) -> tuple[int, str]:
    """The HTTP status and the one-line message for a failure: its category's (see ``mlpq.errors``)."""
    if isinstance(exc, HTTPException):
        return exc.status_code, one_line(exc.detail, None)
    failure = classify(exc)
    return failure.category.http_status, one_line(failure.message, None)


class OneLineErrors(BaseHTTPMiddleware):
    """Answers every failure of a route with ``UI.error``, so that none reaches the server as an exception
    (uvicorn would log its traceback)."""

    def __init__(self, app: Any, ui: UI) -> None:
        super().__init__(app)
        self.ui = ui

    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        try:
            return await call_next(request)
        except Exception as exc:  # every failure is a one-line page, never a traceback
            return await self.ui.error(request, exc)


class SignInRequired(BaseHTTPMiddleware):
    """With a token set, sends whoever has not signed in to /login (or answers 401 under /api)."""

    def __init__(self, app: Any, guard: Guard) -> None:
        super().__init__(app)
        self.guard = guard

    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        path = request.url.path
        if path == "/login" or path.startswith("/static/") or self.guard.may_read(request):
            response = await call_next(request)
        elif is_api(path):
            response = JSONResponse({"error": "sign in: send Authorization: Bearer MLPQ_UI_TOKEN"}, status_code=401)
        else:
            target = path + (f"?{request.url.query}" if request.url.query else "")
            response = RedirectResponse(f"/login?{urlencode({'next': target})}", status_code=303)
        response.headers.update(SECURITY_HEADERS)
        return response


def create_app(client: Client, *, token: str | None = None, allow_actions: bool = False,
               allowed_hosts: Iterable[str] = (), debug: bool = False) -> Starlette:
    """The web app over ``client``'s ledger; actions only with ``allow_actions`` (which needs ``token``).

    It answers requests whose ``Host`` is an address, ``localhost`` or one of ``allowed_hosts`` (see
    ``mlpq.ui.hosts``). Each failure logs one line to ``mlpq.ui``, with its traceback under ``debug``."""
    guard = Guard(token, allow_actions)
    ui = UI(client, guard, debug)
    routes = [
        Route("/", lambda request: RedirectResponse("/jobs", status_code=303)),
        Route("/jobs", ui.jobs),
        Route("/jobs/{job_id}", ui.job),
        Route("/jobs/{job_id}/artifacts/{name}", ui.artifact),
        Route("/jobs/{job_id}/cancel", ui.cancel, methods=["POST"]),
        Route("/jobs/{job_id}/rerun", ui.rerun, methods=["POST"]),
        Route("/sweeps/{sweep_id}", ui.sweep),
        Route("/workers", ui.workers),
        Route("/login", ui.login, methods=["GET", "POST"]),
        Route("/logout", ui.logout, methods=["POST"]),
        Route("/api", lambda request: JSONResponse(API)),
        Route("/api/jobs", ui.api_jobs),
        Route("/api/jobs/{job_id}", ui.api_job),
        Route("/api/jobs/{job_id}/chart", ui.api_job_chart),
        Route("/api/jobs/{job_id}/artifacts", ui.api_job_artifacts),
        Route("/api/sweeps/{sweep_id}", ui.api_sweep),
        Route("/api/sweeps/{sweep_id}/chart", ui.api_sweep_chart),
        Route("/api/workers", ui.api_workers),
        Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
    ]
    middleware = [Middleware(AllowedHosts, names=allowed_hosts), Middleware(SignInRequired, guard=guard),
                  Middleware(OneLineErrors, ui=ui)]
    return Starlette(routes=routes, middleware=middleware,
                     exception_handlers={Exception: ui.error, HTTPException: ui.error})
