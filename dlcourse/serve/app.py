"""The web service: Tornado routes for the API and the hand-in page.

API (``Authorization: Bearer TOKEN``; JSON in, JSON out; no cookies, so no CSRF):

    GET  /api/v1/assignments
    POST /api/v1/assignments/{assignment}/submissions    multipart field ``file``: a notebook or a hand-in zip
    GET  /api/v1/submissions[?assignment=A]
    GET  /api/v1/submissions/{id}

The page (``/``): sign in with the token (a signed, HttpOnly, SameSite=Strict
cookie), choose the assignment, upload, watch the state. Every form carries
Tornado's XSRF token; the page loads nothing from elsewhere (a
Content-Security-Policy of ``'self'`` says so to the browser).

Uploads are read as a stream and refused with 413 past the limit, without
holding more than the limit in memory.
"""

from __future__ import annotations

import json
import logging
from typing import ClassVar

import tornado.web
from tornado import httputil

from ..core.templates import render
from .auth import SignIn
from .service import HandinService, Refused

log = logging.getLogger(__name__)
COOKIE = "dlcourse_student"
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
    "X-Frame-Options": "DENY", "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


class BaseHandler(tornado.web.RequestHandler):
    def initialize(self, service: HandinService, sign_in: SignIn):
        self.service, self.sign_in = service, sign_in

    def set_default_headers(self) -> None:
        for name, value in SECURITY_HEADERS.items():
            self.set_header(name, value)

    def refuse(self, refusal: Refused) -> None:
        self.set_status(refusal.status)
        if refusal.retry_after:
            self.set_header("Retry-After", str(refusal.retry_after))
        self.write_json({"error": refusal.message})

    def write_json(self, data) -> None:
        self.set_header("Content-Type", "application/json; charset=utf-8")
        self.finish(json.dumps(data))

    def write_error(self, status_code: int, **kwargs) -> None:
        self.write_json({"error": self._reason})


class UploadReader:
    """The body of an upload, streamed; over ``limit`` bytes it is dropped and the request answered 413."""

    def begin_upload(self) -> None:
        self.limit = int(self.service.settings.max_upload_mb * 2**20)
        self.chunks, self.size, self.too_large = [], 0, False
        declared = int(self.request.headers.get("Content-Length", "0") or 0)
        if declared > self.limit:
            self.too_large = True
            if declared > 4 * self.limit:  # not worth reading to the end: answer at once, then close
                self.refuse(self.too_large_refusal(declared))

    def data_received(self, chunk: bytes) -> None:
        self.size += len(chunk)
        if self.size > self.limit:
            self.too_large, self.chunks = True, []
        elif not self.too_large:
            self.chunks.append(chunk)

    def too_large_refusal(self, size: int) -> Refused:
        return Refused(413, f"the upload is {size / 2**20:.1f} MB, over the limit of {self.limit / 2**20:g} MB: "
                            "hand in the notebooks (and PDFs) only, with the outputs of large cells cleared")

    def upload(self) -> tuple[str, bytes]:
        """(file name, bytes) of the multipart field ``file``; Refused when there is none or it is too large."""
        if self.too_large:
            raise self.too_large_refusal(self.size)
        arguments, files = {}, {}
        httputil.parse_body_arguments(self.request.headers.get("Content-Type", ""), b"".join(self.chunks),
                                      arguments, files, self.request.headers)
        self.chunks = []
        if not files.get("file"):
            raise Refused(400, "no file: send the notebook or the hand-in zip as the multipart field 'file'")
        part = files["file"][0]
        return part.filename or "handin.ipynb", part.body


class ApiHandler(BaseHandler):
    def check_xsrf_cookie(self) -> None:
        """The API takes a bearer token only, which a browser never adds by itself: no CSRF to check."""

    def student(self) -> str:
        header = self.request.headers.get("Authorization", "")
        scheme, _, credential = header.partition(" ")
        student = self.sign_in.student_of(credential.strip()) if scheme.lower() == "bearer" else None
        if student is None:
            self.set_header("WWW-Authenticate", 'Bearer realm="dlcourse"')
            raise Refused(401, "missing or unknown token: send 'Authorization: Bearer <your token>' with the token "
                               "your instructor sent you")
        return student


class AssignmentsApi(ApiHandler):
    def get(self):
        try:
            self.student()
            self.write_json({"assignments": self.service.assignments()})
        except Refused as refusal:
            self.refuse(refusal)


@tornado.web.stream_request_body
class SubmitApi(UploadReader, ApiHandler):
    def prepare(self):
        self.begin_upload()

    def post(self, assignment: str):
        try:
            student = self.student()
            self.service.require_assignment(assignment)
            filename, data = self.upload()
            view = self.service.receive(student, assignment, filename, data)
        except Refused as refusal:
            return self.refuse(refusal)
        self.set_status(201)
        self.set_header("Location", f"/api/v1/submissions/{view['id']}")
        self.write_json(view)


class SubmissionsApi(ApiHandler):
    def get(self, handin_id: str | None = None):
        try:
            student = self.student()
            if handin_id:
                return self.write_json(self.service.view(student, handin_id))
            assignment = self.get_query_argument("assignment", None)
            if assignment is not None:
                self.service.require_assignment(assignment)
            self.write_json({"submissions": self.service.views(student, assignment)})
        except Refused as refusal:
            self.refuse(refusal)


# --------------------------------------------------------------------------
# The page.


class PageHandler(BaseHandler):
    def get_current_user(self) -> str | None:
        value = self.get_signed_cookie(COOKIE, max_age_days=30)
        return value.decode() if value else None

    def page(self, message: str = "", status: int = 200) -> None:
        student = self.current_user
        self.set_status(status)
        self.finish(render("dlcourse.serve", "page.html.j2", student=student,
                           name=self.service.student_name(student) if student else "",
                           assignments=self.service.assignments(), message=message,
                           limit_mb=self.service.settings.max_upload_mb,
                           xsrf=self.xsrf_form_html(), handins=self.service.views(student) if student else []))


class HomePage(PageHandler):
    def get(self):
        try:
            self.page()
        except Refused as refusal:
            self.set_status(refusal.status)
            self.finish(refusal.message)


class SignInPage(PageHandler):
    def post(self):
        student = self.sign_in.student_of(self.get_body_argument("token", "").strip())
        if student is None:
            return self.page("That token is not known: copy it again from your instructor's message.", 401)
        self.set_signed_cookie(COOKIE, student, httponly=True, samesite="Strict",
                               secure=self.request.protocol == "https")
        self.redirect("/")


class SignOutPage(PageHandler):
    def post(self):
        self.clear_cookie(COOKIE)
        self.redirect("/")


@tornado.web.stream_request_body
class UploadPage(UploadReader, PageHandler):
    def prepare(self):
        self.begin_upload()

    def post(self):
        if not self.current_user:
            return self.page("Sign in first.", 401)
        try:
            filename, data = self.upload()
            assignment = self.get_body_argument("assignment", "")
            self.service.receive(self.current_user, assignment, filename, data)
        except Refused as refusal:
            return self.page(refusal.message, refusal.status)
        self.redirect("/")

    def check_xsrf_cookie(self) -> None:
        """The body is streamed: the form's _xsrf field is read from it once it has arrived (in post)."""

    def upload(self):
        arguments, files = {}, {}
        if self.too_large:
            raise self.too_large_refusal(self.size)
        httputil.parse_body_arguments(self.request.headers.get("Content-Type", ""), b"".join(self.chunks),
                                      arguments, files, self.request.headers)
        self.request.body_arguments = arguments
        self.request.arguments = {**self.request.arguments, **arguments}
        tornado.web.RequestHandler.check_xsrf_cookie(self)  # 403 for a cross-site form
        if not files.get("file"):
            raise Refused(400, "choose a file first: the notebook or the zip that `dlcourse handin` wrote")
        part = files["file"][0]
        return part.filename or "handin.ipynb", part.body


class MyHandins(PageHandler):
    """The signed-in student's hand-ins as JSON, for the page's own refresh (same origin, GET only)."""

    def get(self):
        if not self.current_user:
            self.set_status(401)
            return self.write_json({"error": "sign in first"})
        try:
            self.write_json({"submissions": self.service.views(self.current_user)})
        except Refused as refusal:
            self.refuse(refusal)


class Asset(BaseHandler):
    """The page's script and style, from templates/ (the Content-Security-Policy allows no inline ones)."""

    TYPES: ClassVar[dict[str, str]] = {"page.js": "text/javascript", "page.css": "text/css"}

    def get(self, name: str):
        self.set_header("Content-Type", f"{self.TYPES[name]}; charset=utf-8")
        self.finish(render("dlcourse.serve", f"{name}.j2"))


class Health(BaseHandler):
    def get(self):
        self.write_json({"ok": True})


def make_app(service: HandinService, sign_in: SignIn, cookie_secret: str) -> tornado.web.Application:
    args = {"service": service, "sign_in": sign_in}
    return tornado.web.Application([
        (r"/", HomePage, args), (r"/signin", SignInPage, args), (r"/signout", SignOutPage, args),
        (r"/upload", UploadPage, args), (r"/me/submissions", MyHandins, args), (r"/(page\.js|page\.css)", Asset, args),
        (r"/healthz", Health, args),
        (r"/api/v1/assignments", AssignmentsApi, args),
        (r"/api/v1/assignments/([^/]+)/submissions", SubmitApi, args),
        (r"/api/v1/submissions", SubmissionsApi, args),
        (r"/api/v1/submissions/([0-9a-zA-Z]+)", SubmissionsApi, args),
    ], cookie_secret=cookie_secret, xsrf_cookies=True, xsrf_cookie_kwargs={"httponly": True, "samesite": "Strict"},
        default_handler_class=NotFound, default_handler_args=args)


class NotFound(BaseHandler):
    def prepare(self):
        self.set_status(404)
        self.write_json({"error": f"no such page: {self.request.path} (the API is under /api/v1/)"})
