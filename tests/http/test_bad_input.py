"""Bad input never changes the database: malformed bodies, sizes, content types, hostile ids and slugs."""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import Iterator

import httpx
import pytest

from tests.support.api import create, key, uri
from tests.support.database import fetch_stored, fingerprint
from tests.support.server import RunningServer
from tests.support.wire import TAIL_400, TAIL_404

JSON = {"Content-Type": "application/json"}
MISSING_TYPE = "Missing or empty Content-Type header."
SMUGGLED = "Multiple Content-Type values are not allowed. Provide exactly one Content-Type header."
INJECTIONS = [
    "x' OR '1'='1",
    "'; DROP TABLE rerum_objects; --",
    'x" OR "1"="1',
    "1; SELECT pg_sleep(5)",
    "$where",
]


unchanged = pytest.mark.usefixtures("unchanged_database")


def unsupported(content_type: str) -> str:
    return f"Unsupported Content-Type: {content_type}. This endpoint requires application/json or application/ld+json."


# --- malformed JSON --------------------------------------------------------------------------------------


@pytest.mark.parametrize("body", [b'{"a":', b"{not json}", b'{"a": 1,}', b"[1, 2", b'{"a": "\\ud800"}'])
@unchanged
def test_malformed_json_answers_400_with_the_parser_message_and_the_400_tail(
    client: httpx.Client, owner: dict[str, str], body: bytes
) -> None:
    response = client.post("/v1/api/create", content=body, headers={**owner, **JSON})
    assert response.status_code == 400
    assert response.headers["content-type"] == "text/plain; charset=utf-8"
    head, tail = response.text[: -len(TAIL_400)], response.text[-len(TAIL_400) :]
    assert tail == TAIL_400
    assert re.fullmatch(r"\S.* in JSON at position \d+", head), head


@unchanged
def test_malformed_json_answers_400_before_authentication(client: httpx.Client) -> None:
    response = client.post("/v1/api/create", content=b"{oops", headers=JSON)
    assert response.status_code == 400
    assert response.text.endswith(TAIL_400)


@unchanged
def test_json_nested_ten_thousand_deep_answers_400(client: httpx.Client, owner: dict[str, str]) -> None:
    body = b'{"a":' * 10_000 + b"1" + b"}" * 10_000
    response = client.post("/v1/api/create", content=body, headers={**owner, **JSON})
    assert response.status_code == 400
    assert response.text.endswith(TAIL_400)
    assert " in JSON at position " in response.text


@pytest.mark.parametrize("body", [b'"x"', b"5", b"null", b"true"])
@unchanged
def test_json_scalar_at_top_level_answers_400(
    client: httpx.Client, owner: dict[str, str], body: bytes
) -> None:
    response = client.post("/v1/api/create", content=body, headers={**owner, **JSON})
    assert response.status_code == 400
    assert response.text == "The JSON body must be an object or an array." + TAIL_400


@unchanged
def test_array_body_to_create_answers_400(client: httpx.Client, owner: dict[str, str]) -> None:
    response = client.post("/v1/api/create", json=[{"a": 1}, {"b": 2}], headers=owner)
    assert response.status_code == 400
    assert response.text == "The /create request body must be a JSON object, not an array." + TAIL_400


@pytest.mark.parametrize("body", [{}, []])
@unchanged
def test_empty_json_to_create_answers_400(client: httpx.Client, owner: dict[str, str], body: object) -> None:
    response = client.post("/v1/api/create", json=body, headers=owner)
    assert response.status_code == 400
    assert response.text == (
        "Detected empty JSON object.  You must provide at least one property in the /create request body JSON."
        + TAIL_400
    )


@pytest.mark.parametrize(
    "body", [b'{"a": "x\\u0000y"}', b'{"a\\u0000": 1}', b'{"deep": [{"b": ["\\u0000"]}]}']
)
@unchanged
def test_json_with_a_nul_character_answers_400(
    client: httpx.Client, owner: dict[str, str], body: bytes
) -> None:
    response = client.post("/v1/api/create", content=body, headers={**owner, **JSON})
    assert response.status_code == 400
    assert response.text == "The JSON body contains the character U+0000, which cannot be stored." + TAIL_400


# --- sizes -----------------------------------------------------------------------------------------------


@unchanged
def test_json_body_over_5_mb_answers_413_even_without_a_token(client: httpx.Client) -> None:
    body = b'{"big": "' + b"x" * (5 * 1024 * 1024) + b'"}'
    response = client.post("/v1/api/create", content=body, headers=JSON)
    assert response.status_code == 413
    assert response.text == "request entity too large"


@unchanged
def test_streamed_json_body_over_5_mb_answers_413(client: httpx.Client, owner: dict[str, str]) -> None:
    chunks = iter([b" " * (1024 * 1024)] * 6)  # no Content-Length: the limit is found while reading
    response = client.post("/v1/api/create", content=chunks, headers={**owner, **JSON})
    assert response.status_code == 413
    assert response.text == "request entity too large"


@unchanged
def test_json_body_of_just_under_5_mb_is_parsed(client: httpx.Client) -> None:
    body = b"{" + b" " * (5 * 1024 * 1024 - 3) + b"}"  # parsed, then refused for want of a token
    response = client.post("/v1/api/create", content=body, headers=JSON)
    assert response.status_code == 401


@pytest.mark.parametrize(
    ("method", "content_type", "status"),
    [("OPTIONS", "application/json", 204), ("GET", "application/xml", 405), ("POST", "application/xml", 401),
     ("POST", "application/json, text/plain", 401), ("PUT", None, 405)],
)  # fmt: skip
@unchanged
def test_bodies_the_server_does_not_read_still_get_their_answer_on_concurrent_connections(
    server: RunningServer, method: str, content_type: str | None, status: int
) -> None:
    # Answering while a body the server does not parse was still arriving reset the connection, and
    # most clients got no answer at all (found by tests/http/test_generated_bad_input.py).
    body = b'{"a": "' + b"x" * (1024 * 1024) + b'"}'
    headers = {} if content_type is None else {"Content-Type": content_type}

    async def send_all() -> list[int | str]:
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:

            async def one() -> int | str:
                try:
                    return (
                        await http.request(method, "/v1/api/create", content=body, headers=headers)
                    ).status_code
                except httpx.TransportError as exc:
                    return type(exc).__name__

            return await asyncio.gather(*(one() for _ in range(48)))

    assert asyncio.run(send_all()) == [status] * 48


@pytest.mark.parametrize("path", ["/v1/api/create", "/v1/api/update"])
@unchanged
def test_text_body_over_4_kb_to_a_json_endpoint_answers_413(client: httpx.Client, path: str) -> None:
    response = client.request("POST" if path.endswith("create") else "PUT", path, content=b"w" * 5000,
                              headers={"Content-Type": "text/plain"})  # fmt: skip
    assert response.status_code == 413
    assert response.text == "request entity too large"


# --- 415 (spec 4.4, contentType.test.js) -----------------------------------------------------------------


@pytest.fixture(scope="module")
def missing_uri(server: RunningServer) -> str:
    return server.env["RERUM_ID_PREFIX"] + "0123456789abcdef01234567"


@pytest.mark.parametrize(
    "content_type",
    ["application/json", "application/ld+json", "application/json; charset=utf-8", "application/ld+json; charset=utf-8",
     'application/json; a="b,c"; xy=z', "Application/JSON"],
)  # fmt: skip
@unchanged
def test_json_endpoint_accepts_json_content_types(
    client: httpx.Client, owner: dict[str, str], missing_uri: str, content_type: str
) -> None:
    # overwrite of an unknown object: the 404 shows the content type passed and the body was parsed
    body = b'{"@id": "' + missing_uri.encode() + b'", "a": 1}'
    response = client.put("/v1/api/overwrite", content=body, headers={**owner, "Content-Type": content_type})
    assert response.status_code == 404
    assert response.text == "No object with this id could be found in RERUM. Cannot overwrite. " + TAIL_404


@pytest.mark.parametrize(
    ("content_type", "message"),
    [
        (None, MISSING_TYPE),
        ("", MISSING_TYPE),
        ("application/json;", SMUGGLED),
        ("text/plain", unsupported("text/plain")),
        ("Text/Plain; Charset=UTF-8", unsupported("text/plain; charset=utf-8")),
        ("application/xml", unsupported("application/xml")),
        ("application/json text/plain", SMUGGLED),
        ("application/json, text/plain", SMUGGLED),
        ("application/json; charset=utf-8, text/plain", SMUGGLED),
        ("application/json; text/plain", SMUGGLED),
        ("application/json; charset=utf-8; text/plain", SMUGGLED),
        ("application/json; a=b; c=d text/plain", SMUGGLED),
    ],
)
@unchanged
def test_json_endpoint_rejects_other_content_types_with_415(
    client: httpx.Client, owner: dict[str, str], content_type: str | None, message: str
) -> None:
    headers = dict(owner) if content_type is None else {**owner, "Content-Type": content_type}
    response = client.post("/v1/api/create", content=b'{"a": 1}', headers=headers)
    assert response.status_code == 415
    assert response.text == message


@unchanged
def test_two_content_type_header_lines_answer_415_multiple_values(
    client: httpx.Client, owner: dict[str, str]
) -> None:
    headers = [("Content-Type", "application/json"), ("Content-Type", "text/plain"), *owner.items()]
    response = client.post("/v1/api/create", content=b'{"a": 1}', headers=headers)
    assert response.status_code == 415
    assert response.text == SMUGGLED


@unchanged
def test_content_type_is_checked_after_authentication(client: httpx.Client) -> None:
    response = client.post("/v1/api/create", content=b"<a/>", headers={"Content-Type": "application/xml"})
    assert response.status_code == 401


@pytest.mark.parametrize("charset", ["latin1", "ISO-8859-1", '"windows-1252"'])
@unchanged
def test_unsupported_charset_answers_415_before_authentication(client: httpx.Client, charset: str) -> None:
    response = client.post("/v1/api/create", content=b'{"a": 1}',
                           headers={"Content-Type": f"application/json; charset={charset}"})  # fmt: skip
    assert response.status_code == 415
    assert response.text == f'unsupported charset "{charset.strip(chr(34)).upper()}"'


# --- hostile ids -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("object_id", [*INJECTIONS, "a" * 5000, "%ZZ", "-1", "é"])
@unchanged
def test_hostile_id_reads_answer_404_no_such_object(client: httpx.Client, object_id: str) -> None:
    response = client.get("/v1/id/" + httpx.URL(path=object_id).raw_path.decode())
    assert response.status_code == 404
    assert response.text == f"No RERUM object with id '{object_id}'" + TAIL_404


@pytest.mark.parametrize("path", ["/v1/id/%2F", "/v1/id/%00", "/v1/id/a%00b", "/v1/since/%00", "/v1/id/x/y"])
@unchanged
def test_ids_with_a_slash_or_nul_answer_404_this_page_does_not_exist(client: httpx.Client, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 404
    assert response.text == "This page does not exist"


@pytest.mark.parametrize("object_id", INJECTIONS)
@unchanged
def test_hostile_id_history_answers_404(client: httpx.Client, object_id: str) -> None:
    response = client.get("/v1/history/" + httpx.URL(path=object_id).raw_path.decode())
    assert response.status_code == 404
    assert response.text == (
        f"Cannot produce a history. There is no object in the database with id '{object_id}'.  Check the URL."
        + TAIL_404
    )


@pytest.mark.parametrize("object_id", INJECTIONS)
@unchanged
def test_hostile_id_delete_and_release_answer_404(
    client: httpx.Client, owner: dict[str, str], object_id: str
) -> None:
    path = httpx.URL(path=object_id).raw_path.decode()
    deleted = client.delete("/v1/api/delete/" + path, headers=owner)
    assert deleted.status_code == 404
    assert deleted.text == "No object with this id could be found in RERUM.  Cannot delete." + TAIL_404
    released = client.patch("/v1/api/release/" + path, headers=owner)
    assert released.status_code == 404
    assert released.text == "No object with this id could be found in RERUM. Cannot release. " + TAIL_404


@pytest.mark.parametrize("object_id", INJECTIONS)
@unchanged
def test_hostile_id_in_an_update_body_answers_404(
    client: httpx.Client, owner: dict[str, str], server: RunningServer, object_id: str
) -> None:
    body = {"@id": server.env["RERUM_ID_PREFIX"] + object_id, "a": 1}
    response = client.put("/v1/api/update", json=body, headers=owner)
    assert response.status_code == 404
    assert response.text == (
        "Object not in RERUM even though it has a RERUM URI.  Check if it is an authentic RERUM object. "
        + TAIL_404
    )


@unchanged
def test_slug_with_a_slash_answers_400(client: httpx.Client, owner: dict[str, str]) -> None:
    response = client.post("/v1/api/create", json={"a": 1}, headers={**owner, "Slug": "a/b"})
    assert response.status_code == 400
    assert response.text == "The Slug header must be 1 to 255 characters without '/'." + TAIL_400


# --- POST edits need the override header -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "override"),
    [("/v1/api/patch", None), ("/v1/api/patch", "patch"), ("/v1/api/set", None), ("/v1/api/unset", "PUT")],
)
@unchanged
def test_post_edit_without_the_exact_override_header_answers_405(
    client: httpx.Client, owner: dict[str, str], missing_uri: str, path: str, override: str | None
) -> None:
    headers = owner if override is None else {**owner, "X-HTTP-Method-Override": override}
    response = client.post(path, json={"@id": missing_uri, "a": 1}, headers=headers)
    assert response.status_code == 405
    assert response.headers["allow"] == "PATCH, POST"
    assert response.content == b""


@unchanged
def test_post_edit_with_the_override_header_is_a_patch(
    client: httpx.Client, owner: dict[str, str], missing_uri: str
) -> None:
    headers = {**owner, "X-HTTP-Method-Override": "PATCH"}
    response = client.post("/v1/api/patch", json={"@id": missing_uri, "a": 1}, headers=headers)
    assert response.status_code == 501  # unknown object: the PATCH handler ran


# --- injection strings are data (these tests write, so they check the exact change instead) ---------------


@pytest.fixture
def one_row_added(server: RunningServer) -> Iterator[None]:
    rows_before, _ = fingerprint(server.env["DATABASE_URL"])
    yield
    rows_after, _ = fingerprint(server.env["DATABASE_URL"])
    assert rows_after == rows_before + 1


@pytest.mark.parametrize("injection", INJECTIONS)
def test_injection_strings_in_slug_and_values_are_stored_verbatim(
    client: httpx.Client, owner: dict[str, str], server: RunningServer, one_row_added: None, injection: str
) -> None:
    slug = f"{injection}-{uuid.uuid4().hex[:8]}"
    body = {"@id": injection, "name": injection, injection: [injection], "nested": {"q": injection}}
    created = create(client, owner, body, Slug=slug)
    stored = fetch_stored(server.env["DATABASE_URL"], key(created))
    assert stored is not None
    assert stored["@id"] == uri(created) != injection  # @id is the server's, whatever the client sent
    assert stored["name"] == injection
    assert stored[injection] == [injection]
    assert stored["nested"] == {"q": injection}
    assert stored["__rerum"]["slug"] == slug
    by_slug = client.get("/v1/id/" + httpx.URL(path=slug).raw_path.decode())
    assert by_slug.status_code == 200
    assert by_slug.json()["name"] == injection
