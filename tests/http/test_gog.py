"""Gallery of Glosses endpoints over HTTP: the two manuscript aggregations and the expanded object (spec 9)."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from tests.conftest import OWNER
from tests.support.api import create, key, update
from tests.support.trees import (
    ALLOW,
    JSON,
    JSON_LD,
    LD_CONTEXT_LINK,
    RESOURCE_LINK,
    TAIL_400,
    TAIL_404,
    delete,
    tail_403,
)

GOG = "https://store.rerum.io/v1/id/61043ad4ffce846a83e700dd"
GOG_DEV = "https://store.rerum.io/v1/id/5afeebf3e4b0b0d588705d90"
GOG_ONLY = "Only the Gallery of Glosses can make this request."
BAD_BODY = 'The body must be JSON like {"ManuscriptWitness":"witness_uri_here"}.'
NOT_GOG_DATA = "This request can only be made for Gallery of Glosses generated data."
DEER_NOTE = "Learn about the assembler for this object at https://github.com/CenterForDigitalHumanities/deer"
FRAGMENTS = "/gog/fragmentsInManuscript"
GLOSSES = "/gog/glossesInManuscript"


@pytest.fixture(scope="module")
def gog(token_for: Callable[[str], str]) -> dict[str, str]:
    return {"Authorization": "Bearer " + token_for(GOG)}


@pytest.fixture(scope="module")
def gog_dev(token_for: Callable[[str], str]) -> dict[str, str]:
    return {"Authorization": "Bearer " + token_for(GOG_DEV)}


def _other_scheme(uri: str) -> str:
    return "https://" + uri.removeprefix("http://") if uri.startswith("http://") else uri


def _annotation(manuscript: str, target: Any, **extra: Any) -> dict[str, Any]:
    return {"type": "Annotation", "body": {"partOf": manuscript}, "target": target, **extra}


class Manuscript:
    """One manuscript's GoG data, made through the API (a fresh witness URI per module run).

    Fragments F1..F3 (F2 was updated, so its first version is not current), annotations placing them in
    the manuscript in each of the reference's shapes, decoys that must not count, and gloss annotations.
    """

    def __init__(self, http: httpx.Client, gog: dict[str, str], owner: dict[str, str]) -> None:
        self.uri = f"http://manuscripts.example.org/{secrets.token_hex(8)}"
        fragment = {"type": "WitnessFragment"}
        self.f1 = create(http, gog, {**fragment, "label": "F1"})
        self.f2_old = create(http, gog, {"@type": "WitnessFragment", "label": "F2"})
        self.f2 = update(http, gog, {"@id": self.f2_old["@id"], "@type": "WitnessFragment", "label": "F2 v2"})
        self.f3 = create(http, gog, {**fragment, "label": "F3"})
        thing = create(http, gog, {"type": "Thing"})
        https_uri = _other_scheme(self.uri)
        placing = [
            create(http, gog, _annotation(https_uri, self.f1["@id"])),
            create(
                http,
                gog,
                {
                    "@type": "oa:Annotation",
                    "body": {"partOf": {"value": self.uri}},
                    "target": self.f2_old["@id"],
                },
            ),
            create(
                http, gog, {"@type": "Annotation", "body": {"partOf": self.uri}, "target": [self.f3["@id"]]}
            ),
            create(http, gog, _annotation(self.uri, self.f1["@id"], note="a second placing of F1")),
            create(http, gog, _annotation(self.uri, thing["@id"])),
        ]
        # The placings in the reference's first-stage order (_id), with what each contributes.
        contributes = {
            key(placing[0]): self.f1["@id"],
            key(placing[1]): self.f2_old["@id"],
            key(placing[2]): self.f3["@id"],
            key(placing[3]): self.f1["@id"],
            key(placing[4]): None,
        }
        self.placing_order = [contributes[k] for k in sorted(contributes)]
        # Decoys: another agent, another manuscript, a superseded placing, not an annotation.
        create(http, owner, _annotation(self.uri, self.f1["@id"]))
        create(http, gog, _annotation(self.uri + "-other", self.f1["@id"]))
        superseded = create(http, gog, _annotation(self.uri, self.f2["@id"]))
        update(
            http,
            gog,
            {**_annotation("https://elsewhere.example.org/ms", self.f2["@id"]), "@id": superseded["@id"]},
        )
        create(http, gog, {"type": "Note", "body": {"partOf": self.uri}, "target": self.f2["@id"]})
        # Glosses referenced by annotations on the fragments (any author, any version).
        create(http, gog, {"target": self.f1["@id"], "body": {"references": {"value": ["urn:gloss:1"]}}})
        create(http, owner, {"target": self.f2_old["@id"], "body": {"references": {"value": "urn:gloss:2"}}})
        create(
            http,
            gog,
            {"target": [self.f3["@id"]], "body": {"references": {"value": ["urn:gloss:3", "urn:gloss:1"]}}},
        )
        create(http, gog, {"target": self.f3["@id"], "body": {"text": "no references"}})
        create(http, gog, {"target": thing["@id"], "body": {"references": {"value": "urn:gloss:thing"}}})

    def fragments(self, *, current_only: bool) -> list[str]:
        """The fragment URIs the reference's pipeline yields, in order, each once."""
        excluded = {None, self.f2_old["@id"]} if current_only else {None}
        return list(dict.fromkeys(uri for uri in self.placing_order if uri not in excluded))

    def glosses(self) -> list[str]:
        by_fragment = {
            self.f1["@id"]: ["urn:gloss:1"],
            self.f2_old["@id"]: ["urn:gloss:2"],
            self.f3["@id"]: ["urn:gloss:3", "urn:gloss:1"],
        }
        values = [value for uri in self.fragments(current_only=False) for value in by_fragment[uri]]
        return list(dict.fromkeys(values))


@pytest.fixture(scope="module")
def manuscript(http: httpx.Client, gog: dict[str, str], owner: dict[str, str]) -> Manuscript:
    return Manuscript(http, gog, owner)


def _post(http: httpx.Client, path: str, auth: dict[str, str], body: Any) -> httpx.Response:
    return http.post(path, json=body, headers=auth)


# --- fragmentsInManuscript / glossesInManuscript ------------------------------------------------------------


def test_fragments_are_the_current_witness_fragments_of_the_agents_current_annotations_in_id_order(
    http: httpx.Client, gog: dict[str, str], manuscript: Manuscript
) -> None:
    response = _post(http, FRAGMENTS, gog, {"ManuscriptWitness": manuscript.uri})
    assert response.status_code == 200, response.text
    assert response.json() == [
        {"@id": uri, "@type": "WitnessFragment"} for uri in manuscript.fragments(current_only=True)
    ]
    assert len(response.json()) == 2  # F1 (placed twice, listed once) and F3
    assert response.headers["content-type"] == JSON_LD
    assert response.headers["link"] == LD_CONTEXT_LINK
    assert response.headers["allow"] == ALLOW


def test_the_manuscript_matches_in_its_http_and_https_forms(
    http: httpx.Client, gog: dict[str, str], manuscript: Manuscript
) -> None:
    as_https = _post(http, FRAGMENTS, gog, {"ManuscriptWitness": _other_scheme(manuscript.uri)})
    assert as_https.status_code == 200
    assert as_https.json() == _post(http, FRAGMENTS, gog, {"ManuscriptWitness": manuscript.uri}).json()


def test_glosses_are_the_references_of_annotations_on_every_placed_fragment(
    http: httpx.Client, gog: dict[str, str], manuscript: Manuscript
) -> None:
    response = _post(http, GLOSSES, gog, {"ManuscriptWitness": manuscript.uri})
    assert response.status_code == 200, response.text
    assert response.json() == [{"@id": uri, "@type": "Gloss"} for uri in manuscript.glosses()]
    assert {item["@id"] for item in response.json()} == {"urn:gloss:1", "urn:gloss:2", "urn:gloss:3"}
    assert response.headers["content-type"] == JSON_LD
    assert response.headers["link"] == LD_CONTEXT_LINK


def test_limit_and_skip_page_over_the_placing_annotations(
    http: httpx.Client, gog: dict[str, str], manuscript: Manuscript
) -> None:
    for skip in range(6):
        response = _post(
            http, FRAGMENTS + f"?limit=1&skip={skip}", gog, {"ManuscriptWitness": manuscript.uri}
        )
        assert response.status_code == 200
        placed = manuscript.placing_order[skip : skip + 1]
        expected = [uri for uri in placed if uri not in (None, manuscript.f2_old["@id"])]
        assert [item["@id"] for item in response.json()] == expected


def test_an_unknown_manuscript_has_no_fragments_and_no_glosses(
    http: httpx.Client, gog: dict[str, str]
) -> None:
    for path in (FRAGMENTS, GLOSSES):
        response = _post(
            http, path, gog, {"ManuscriptWitness": "https://nowhere.example.org/" + secrets.token_hex(6)}
        )
        assert response.status_code == 200
        assert response.json() == []
        assert response.headers["content-type"] == JSON_LD


def test_default_limit_is_50_annotations(http: httpx.Client, gog: dict[str, str]) -> None:
    witness = f"https://manuscripts.example.org/big-{secrets.token_hex(6)}"
    made = http.post(
        "/v1/api/bulkCreate", json=[{"type": "WitnessFragment", "n": n} for n in range(55)], headers=gog
    )
    assert made.status_code == 201, made.text
    placing = [_annotation(witness, fragment["@id"]) for fragment in made.json()]
    assert http.post("/v1/api/bulkCreate", json=placing, headers=gog).status_code == 201
    body = {"ManuscriptWitness": witness}
    assert len(_post(http, FRAGMENTS, gog, body).json()) == 50
    assert len(_post(http, FRAGMENTS + "?limit=100", gog, body).json()) == 55
    assert len(_post(http, FRAGMENTS + "?limit=0", gog, body).json()) == 50
    assert len(_post(http, FRAGMENTS + "?limit=10&skip=50", gog, body).json()) == 5
    assert len(_post(http, GLOSSES, gog, body).json()) == 0


def test_a_repeated_aggregation_is_a_cache_hit_until_a_write(http: httpx.Client, gog: dict[str, str]) -> None:
    witness = f"https://manuscripts.example.org/cached-{secrets.token_hex(6)}"
    fragment = create(http, gog, {"type": "WitnessFragment"})
    create(http, gog, _annotation(witness, fragment["@id"]))
    create(http, gog, {"target": fragment["@id"], "body": {"references": {"value": "urn:gloss:a"}}})
    body = {"ManuscriptWitness": witness}
    first = _post(http, GLOSSES, gog, body)
    second = _post(http, GLOSSES, gog, body)
    assert (first.headers["x-cache"], second.headers["x-cache"]) == ("MISS", "HIT")
    assert second.content == first.content
    assert first.json() == [{"@id": "urn:gloss:a", "@type": "Gloss"}]
    create(http, gog, {"target": fragment["@id"], "body": {"references": {"value": "urn:gloss:b"}}})
    third = _post(http, GLOSSES, gog, body)
    assert third.headers["x-cache"] == "MISS"
    assert third.json() == [
        {"@id": "urn:gloss:a", "@type": "Gloss"},
        {"@id": "urn:gloss:b", "@type": "Gloss"},
    ]


@pytest.mark.parametrize("path", [FRAGMENTS, GLOSSES])
def test_other_agents_are_forbidden_even_the_development_gog_agent(
    http: httpx.Client, owner: dict[str, str], gog_dev: dict[str, str], path: str
) -> None:
    for auth in (owner, gog_dev):
        response = _post(http, path, auth, {"ManuscriptWitness": "https://example.org/ms"})
        assert response.status_code == 403
        assert response.text == GOG_ONLY + tail_403(auth)


@pytest.mark.parametrize("path", [FRAGMENTS, GLOSSES])
def test_without_a_token_the_aggregations_answer_401(http: httpx.Client, path: str) -> None:
    response = http.post(path, json={"ManuscriptWitness": "https://example.org/ms"})
    assert response.status_code == 401
    assert response.text.startswith("Unauthorized")


@pytest.mark.parametrize("path", [FRAGMENTS, GLOSSES])
@pytest.mark.parametrize(
    "request_kwargs",
    [
        {},  # no body at all (the reference crashed with 500)
        {"json": {}},
        {"json": {"ManuscriptWitness": "urn:not-http"}},
        {"json": {"ManuscriptWitness": 5}},
        {"json": {"witness": "https://example.org/ms"}},
        {"json": ["https://example.org/ms"]},
        {"content": "https://example.org/ms", "headers": {"Content-Type": "text/plain"}},
    ],
)
def test_a_body_without_an_http_manuscript_witness_answers_400(
    http: httpx.Client, gog: dict[str, str], path: str, request_kwargs: dict[str, Any]
) -> None:
    kwargs = dict(request_kwargs)  # the parameter is shared between the parametrized paths
    headers = {**gog, **kwargs.pop("headers", {})}
    response = http.post(path, headers=headers, **kwargs)
    assert response.status_code == 400
    assert response.text == BAD_BODY + TAIL_400


@pytest.mark.parametrize("path", [FRAGMENTS, GLOSSES])
@pytest.mark.parametrize("method", ["GET", "PUT", "PATCH", "DELETE", "HEAD"])
def test_other_methods_answer_405(http: httpx.Client, path: str, method: str) -> None:
    response = http.request(method, path)
    assert response.status_code == 405
    assert response.headers["allow"] == "POST"


# --- gog/id -----------------------------------------------------------------------------------------------


class Described:
    """A GoG object and the annotations that describe it (some that must be ignored)."""

    def __init__(self, http: httpx.Client, gog: dict[str, str], owner: dict[str, str]) -> None:
        self.obj = create(http, gog, {"type": "ManuscriptWitness", "title": "Original title"})
        uri = self.obj["@id"]
        self.label = create(
            http,
            gog,
            {
                "type": "Annotation",
                "label": "Labeling",
                "target": uri,
                "body": {"label": {"value": "Codex A", "evidence": "ev-1"}},
            },
        )
        self.title = create(
            http,
            gog,
            {
                "@type": "Annotation",
                "name": "Titling",
                "evidence": "ev-2",
                "target": {"@id": _other_scheme(uri)},
                "body": {"title": "Second title"},
            },
        )
        self.city = create(
            http,
            gog,
            {
                "@type": "oa:Annotation",
                "target": {"id": uri},
                "body": {"city": {"value": "Rome", "source": "src:custom"}},
            },
        )
        old = create(http, gog, {"type": "Annotation", "target": uri, "body": {"shelfmark": "old"}})
        self.shelfmark = update(
            http, gog, {"@id": old["@id"], "type": "Annotation", "target": uri, "body": {"shelfmark": "MS 1"}}
        )
        # Ignored: two keys in the body, another author, not an annotation, another target.
        create(http, gog, {"type": "Annotation", "target": uri, "body": {"a": 1, "b": 2}})
        create(http, owner, {"type": "Annotation", "target": uri, "body": {"intruder": "yes"}})
        create(http, gog, {"type": "Note", "target": uri, "body": {"note": "no"}})
        create(http, gog, {"type": "Annotation", "target": uri + "x", "body": {"other": "no"}})

    def expected(self) -> dict[str, Any]:
        body = {key: value for key, value in self.obj.items() if key != "new_obj_state"}
        return {
            **body,
            "title": [
                "Original title",
                {
                    "value": "Second title",
                    "source": {
                        "citationSource": self.title["@id"],
                        "citationNote": "Titling",
                        "comment": DEER_NOTE,
                    },
                    "evidence": "ev-2",
                },
            ],
            "label": {
                "value": "Codex A",
                "source": {
                    "citationSource": self.label["@id"],
                    "citationNote": "Labeling",
                    "comment": DEER_NOTE,
                },
                "evidence": "ev-1",
            },
            "city": {"value": "Rome", "source": "src:custom", "evidence": ""},
            "shelfmark": {
                "value": "MS 1",
                "source": {
                    "citationSource": self.shelfmark["@id"],
                    "citationNote": "Composed object from DEER",
                    "comment": DEER_NOTE,
                },
                "evidence": "",
            },
        }


@pytest.fixture(scope="module")
def described(http: httpx.Client, gog: dict[str, str], owner: dict[str, str]) -> Described:
    return Described(http, gog, owner)


def test_gog_object_is_expanded_with_its_generators_current_single_key_annotations(
    http: httpx.Client, described: Described
) -> None:
    response = http.get(f"/gog/id/{key(described.obj)}")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body == described.expected()
    assert list(body)[: len(described.obj) - 1] == [k for k in described.obj if k != "new_obj_state"]


def test_gog_object_headers_are_those_of_v1_id_without_last_modified(
    http: httpx.Client, described: Described
) -> None:
    response = http.get(f"/gog/id/{key(described.obj)}")
    headers = response.headers
    assert headers["content-type"] == JSON
    assert headers["link"] == RESOURCE_LINK
    assert headers["allow"] == ALLOW
    assert headers["location"] == described.obj["@id"]
    assert headers["current-overwritten-version"] == ""
    assert headers["cache-control"] == "no-cache"
    assert headers["etag"].startswith('"') and not headers["etag"].startswith("W/")
    assert "last-modified" not in headers
    head = http.head(f"/gog/id/{key(described.obj)}")
    assert head.status_code == 200
    assert head.content == b""
    assert head.headers["content-length"] == str(len(response.content))
    assert head.headers["etag"] == headers["etag"]
    revalidated = http.get(f"/gog/id/{key(described.obj)}", headers={"If-None-Match": headers["etag"]})
    assert revalidated.status_code == 304
    assert revalidated.content == b""


def test_gog_object_is_cached_and_refreshed_after_a_new_annotation(
    http: httpx.Client, gog: dict[str, str]
) -> None:
    obj = create(http, gog, {"type": "Thing"})
    first = http.get(f"/gog/id/{key(obj)}")
    second = http.get(f"/gog/id/{key(obj)}")
    assert (first.headers["x-cache"], second.headers["x-cache"]) == ("MISS", "HIT")
    assert second.content == first.content
    create(http, gog, {"type": "Annotation", "target": obj["@id"], "body": {"color": "red"}})
    third = http.get(f"/gog/id/{key(obj)}")
    assert third.headers["x-cache"] == "MISS"
    assert third.json()["color"]["value"] == "red"


def test_gog_object_sends_the_overwritten_version(http: httpx.Client, gog: dict[str, str]) -> None:
    obj = create(http, gog, {"type": "Thing", "v": 1})
    overwritten = http.put(
        "/v1/api/overwrite", json={"@id": obj["@id"], "type": "Thing", "v": 2}, headers=gog
    )
    assert overwritten.status_code == 200
    response = http.get(f"/gog/id/{key(obj)}")
    assert response.json()["v"] == 2
    assert (
        response.headers["current-overwritten-version"]
        == overwritten.json()["__rerum"]["isOverwritten"]
        != ""
    )


def test_gog_object_of_the_development_agent_is_served(http: httpx.Client, gog_dev: dict[str, str]) -> None:
    obj = create(http, gog_dev, {"type": "Thing", "dev": True})
    create(http, gog_dev, {"type": "Annotation", "target": obj["@id"], "body": {"size": 3}})
    response = http.get(f"/gog/id/{key(obj)}")
    assert response.status_code == 200
    assert response.json()["size"]["value"] == 3


def test_gog_object_with_a_context_is_negotiated_and_json_ld(http: httpx.Client, gog: dict[str, str]) -> None:
    obj = create(http, gog, {"@context": "http://www.w3.org/ns/anno.jsonld", "type": "AnnotationPage"})
    response = http.get(f"/gog/id/{key(obj)}")
    assert response.status_code == 200
    assert response.headers["content-type"] == JSON_LD
    assert response.json()["id"] == obj["id"]
    assert "@id" not in response.json()
    assert response.headers["location"] == obj["id"]


def test_deleted_gog_object_is_answered_as_its_shell(http: httpx.Client, gog: dict[str, str]) -> None:
    obj = create(http, gog, {"type": "Thing"})
    delete(http, gog, obj)
    response = http.get(f"/gog/id/{key(obj)}")
    assert response.status_code == 200
    assert response.json() == http.get(f"/v1/id/{key(obj)}").json()
    assert "__deleted" in response.json()


def test_gog_object_of_another_agent_is_forbidden(http: httpx.Client, owner: dict[str, str]) -> None:
    obj = create(http, owner, {"type": "Thing"})
    assert obj["__rerum"]["generatedBy"] == OWNER
    for attempt in ("MISS", "HIT"):
        response = http.get(f"/gog/id/{key(obj)}")
        assert response.status_code == 403
        assert response.headers["x-cache"] == attempt
        assert response.text.startswith(NOT_GOG_DATA + "\nYou are Forbidden from performing this action.")


def test_missing_gog_object_answers_404(http: httpx.Client) -> None:
    missing = secrets.token_hex(12)
    for attempt in ("MISS", "HIT"):
        response = http.get(f"/gog/id/{missing}")
        assert response.status_code == 404
        assert response.text == f"No RERUM object with id '{missing}'" + TAIL_404
        assert response.headers["x-cache"] == attempt


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE"])
def test_gog_id_other_methods_answer_405(http: httpx.Client, method: str) -> None:
    response = http.request(method, "/gog/id/abc")
    assert response.status_code == 405
    assert response.headers["allow"] == "GET, HEAD"
