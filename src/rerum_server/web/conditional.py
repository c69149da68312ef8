"""ETags and conditional GET/HEAD (304), computed over the exact response bytes."""

from __future__ import annotations

import base64
import hashlib
from email.utils import parsedate_to_datetime

from rerum_server.web.http import Request, Response


def etag_of(body: bytes, *, strong: bool = False) -> str:
    """Express's ETag formula (length in hex and a SHA-1 prefix); weak unless ``strong``."""
    digest = base64.b64encode(hashlib.sha1(body).digest()).decode()[:27]
    tag = f'"{len(body):x}-{digest}"'
    return tag if strong else "W/" + tag


def _matches(if_none_match: str, etag: str) -> bool:
    if if_none_match.strip() == "*":
        return True
    bare = etag.removeprefix("W/")
    return any(candidate.strip().removeprefix("W/") == bare for candidate in if_none_match.split(","))


def is_not_modified(request: Request, response: Response) -> bool:
    """Whether a 2xx GET/HEAD may become 304 for this request (If-None-Match, If-Modified-Since)."""
    if request.method not in ("GET", "HEAD") or not 200 <= response.status < 300:
        return False
    if "no-cache" in (request.header("cache-control") or ""):
        return False
    if_none_match = request.header("if-none-match")
    if_modified_since = request.header("if-modified-since")
    if if_none_match is None and if_modified_since is None:
        return False
    etag = response.header("ETag")
    if if_none_match is not None and (etag is None or not _matches(if_none_match, etag)):
        return False
    if if_modified_since is not None:
        last_modified = response.header("Last-Modified")
        if if_none_match is None and (
            last_modified is None or not _not_after(last_modified, if_modified_since)
        ):
            return False
    return True


def _not_after(last_modified: str, if_modified_since: str) -> bool:
    try:
        return parsedate_to_datetime(last_modified) <= parsedate_to_datetime(if_modified_since)
    except (TypeError, ValueError):
        return False
