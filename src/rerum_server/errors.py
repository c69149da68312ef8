"""Errors that end a request, each carrying the HTTP status and RERUM's literal message.

The tree::

    RerumError                      status + message head; rendered as text/plain with RERUM's tails
    ├── BadRequest                  400
    ├── Unauthorized                401 (may carry the JWT library's challenge text)
    ├── Forbidden                   403
    ├── NotFound                    404
    ├── Conflict                    409
    ├── PayloadTooLarge             413
    ├── UnsupportedMediaType        415
    ├── NotImplementedByRerum       501
    ├── MethodNotAllowed            405, empty body, Allow header
    ├── PageNotFound                404 "This page does not exist" (text/html), the router's fallback
    ├── VersionConflict             409 with JSON {"currentVersion": <stored document>}
    └── ServiceUnavailable          503 with JSON {"message": ...}

Only ``web/error_responses.py`` turns these into responses; everything else raises them.
"""

from __future__ import annotations

from typing import Any


class RerumError(Exception):
    """An error with an HTTP status and the head of RERUM's message (tails are added when rendered)."""

    status = 500

    def __init__(self, message: str = "", *, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.headers: list[tuple[str, str]] = []  # sent with the error response (e.g. X-Cache on a 404)
        if status is not None:
            self.status = status


class BadRequest(RerumError):
    status = 400


class Unauthorized(RerumError):
    """401. ``challenge`` is appended to the message without a separator, as the reference does."""

    status = 401

    def __init__(self, message: str = "", *, challenge: str = "") -> None:
        super().__init__(message)
        self.challenge = challenge


class Forbidden(RerumError):
    status = 403


class NotFound(RerumError):
    status = 404


class Conflict(RerumError):
    status = 409


class PayloadTooLarge(RerumError):
    status = 413

    def __init__(self, message: str = "request entity too large") -> None:
        super().__init__(message)


class UnsupportedMediaType(RerumError):
    status = 415


class NotImplementedByRerum(RerumError):
    status = 501


class MethodNotAllowed(RerumError):
    """405 with RERUM's explanation; ASGI cannot set a reason phrase, so it travels in a header too."""

    status = 405

    def __init__(self, explanation: str, allow: str) -> None:
        super().__init__(explanation)
        self.allow = allow


class PageNotFound(RerumError):
    status = 404

    def __init__(self) -> None:
        super().__init__("This page does not exist")


class VersionConflict(RerumError):
    """Overwrite with a stale ``If-Overwritten-Version``: the body is the stored document as it is now."""

    status = 409

    def __init__(self, current: dict[str, Any]) -> None:
        super().__init__("The object was overwritten since the version you expected.")
        self.current = current


class ServiceUnavailable(RerumError):
    status = 503


DUPLICATE_ID = "The id provided already exists.  Please use a different _id or Slug."
