"""The one place an error becomes a response, with RERUM's message tails (spec 4.3, 12.2)."""

from __future__ import annotations

import orjson

from rerum_server import errors
from rerum_server.web.http import Request, Response

TEXT = "text/plain; charset=utf-8"
_BAD_SCHEME = (
    'Your token is not in the correct format.  It should be a Bearer token formatted like: "Bearer <token>"'
)
_SERVER_TAIL = (
    "\nRERUM experienced a server issue while performing this action.\n"
    "It may not have completed at all, and most likely did not complete successfully."
)


def _tail(status: int, authorization: str | None, rerum_prefix: str) -> str:
    token = f"\nToken: {authorization[:15]}... " if authorization else ""
    if status == 400:
        return (
            "\nThe body of your request was invalid. Please make sure it is a valid content-type and that the "
            "body matches that type.\nIf the body is JSON, make sure it is valid JSON."
        )
    if status == 401:
        if authorization:
            return (
                "\nThe token provided is Unauthorized.  Please check that it is your token and that it is not "
                "expired. " + token
            )
        return (
            '\nThe request does not contain an "Authorization" header and so is Unauthorized. Please include '
            'a token with your requests\nlike "Authorization: Bearer <token>". Make sure you have registered '
            f"at {rerum_prefix}."
        )
    if status == 403:
        if authorization:
            return "\nYou are Forbidden from performing this action.  Check your privileges." + token.rstrip(
                " "
            )
        return (
            "\nYou are Forbidden from performing this action. The request does not contain an "
            f'"Authorization" header.\nMake sure you have registered at {rerum_prefix}. '
        )
    if status == 404:
        return "\nThe requested web page or resource could not be found."
    if status in (405, 409, 413, 415, 501, 503):
        return ""
    return _SERVER_TAIL


def error_response(error: errors.RerumError, request: Request, rerum_prefix: str) -> Response:
    """Render ``error`` as the reference's messenger does (text/plain heads + tails, a few JSON bodies)."""
    if isinstance(error, errors.MethodNotAllowed):
        return Response(405, b"", [("Allow", error.allow)])
    if isinstance(error, errors.ServiceUnavailable):
        return Response(
            503, orjson.dumps({"message": error.message}), content_type="application/json; charset=utf-8"
        )
    if isinstance(error, errors.VersionConflict):
        return Response(
            409,
            orjson.dumps({"currentVersion": error.current}),
            content_type="application/json; charset=utf-8",
        )
    authorization = request.header("authorization")
    status = error.status
    message = error.message
    if isinstance(error, errors.PageNotFound) and not (
        authorization and not authorization.startswith("Bearer ")
    ):
        return Response(404, message.encode(), content_type="text/html; charset=utf-8")
    if isinstance(error, errors.Unauthorized):
        message += error.challenge
    if authorization and not authorization.startswith("Bearer "):
        # The reference forces 401 for any error while a non-"Bearer " Authorization header is present.
        message += _BAD_SCHEME
        status = 401
    return Response(
        status, (message + _tail(status, authorization, rerum_prefix)).encode(), content_type=TEXT
    )
