"""Errors the REST API answers with: each knows its HTTP status, and carries a message for people
and optional fields for programs (a spec error's file and line, the build that holds a pipeline).

They derive from tornado's ``HTTPError`` so that raising one anywhere below a handler ends the
request with that status; the base handler (``handlers.ApiHandler.write_error``) turns it into
JSON in one place.
"""

from __future__ import annotations

from typing import Any

from tornado.web import HTTPError


class ApiError(HTTPError):
    status = 500

    def __init__(self, message: str, **fields: Any):
        # The message goes in as an argument, never as the format string: it may contain '%'.
        super().__init__(self.status, "%s", message)
        self.message = message
        self.fields = fields


class BadRequest(ApiError):
    status = 400


class Forbidden(ApiError):
    status = 403


class NotFound(ApiError):
    status = 404


class Conflict(ApiError):
    status = 409


class Unprocessable(ApiError):
    """The request is well formed but the pipeline cannot be loaded (a spec error)."""

    status = 422


class TooManyBuilds(ApiError):
    status = 429
