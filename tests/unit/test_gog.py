"""The pure Gallery of Glosses parts: filters, joins, expansion (spec 9)."""

from __future__ import annotations

from rerum_server.query import compile_filter, gog, parse_filter

GOG = "https://store.rerum.io/v1/id/61043ad4ffce846a83e700dd"


def test_both_schemes_and_gog_agents() -> None:
    assert gog.both_schemes("https://a.org/x") == ["http://a.org/x", "https://a.org/x"]
    assert gog.both_schemes("http://a.org/x") == ["http://a.org/x", "https://a.org/x"]
    assert gog.both_schemes("urn:x") == ["urn:x"]
    assert gog.is_gog_agent(GOG) and gog.is_gog_agent(
        "http://devstore.rerum.io/v1/id/61043ad4ffce846a83e700dd"
    )
    assert not gog.is_gog_agent("https://store.rerum.io/v1/id/5afeebf3e4b0b0d588705d90")
    assert gog.is_gog_agent("https://store.rerum.io/v1/id/5afeebf3e4b0b0d588705d90", development_too=True)


def test_gog_data_is_judged_by_the_generator_also_of_a_deleted_object() -> None:
    assert gog.is_gog_data({"__rerum": {"generatedBy": GOG}})
    assert gog.is_gog_data({"@id": "x", "__deleted": {"object": {"__rerum": {"generatedBy": GOG}}}})
    assert not gog.is_gog_data({"__rerum": {"generatedBy": 5}})
    assert not gog.is_gog_data({"@id": "x"})


def test_every_lookup_chunk_keeps_the_index_condition() -> None:
    uris = [f"https://a.org/{n}" for n in range(40)] + ["https://a.org/1"]
    chunks = list(gog.chunks(uris))
    assert [len(chunk) for chunk in chunks] == [16, 16, 8]
    assert [uri for chunk in chunks for uri in chunk] == [f"https://a.org/{n}" for n in range(40)]
    for condition in (gog.fragments(chunks[0], leaf_only=True), gog.gloss_references(chunks[0])):
        assert " @@ " in compile_filter(parse_filter(condition)).sql


def test_fragment_entries_follow_the_annotations_and_drop_repeats() -> None:
    annotations = [
        {"target": "f2"},
        {"target": ["f1", "nothing"]},
        {"target": "f2"},
        {"target": {"@id": "f1"}},
    ]
    fragments = [{"@id": "f1"}, {"@id": "f2"}]
    assert gog.fragment_entries(annotations, fragments) == [
        {"@id": "f2", "@type": "WitnessFragment"},
        {"@id": "f1", "@type": "WitnessFragment"},
    ]


def test_gloss_entries_unwind_bodies_references_and_values() -> None:
    annotations = [
        {"target": "f1", "body": {"references": {"value": ["g1", "g2"]}}},
        {"target": ["f2"], "body": [{"references": [{"value": "g3"}, {"value": "g1"}]}, {"other": 1}]},
        {"target": "f1", "body": {"references": "not an object"}},
        {"target": "f3", "body": {"references": {"value": "g9"}}},
    ]
    assert [entry["@id"] for entry in gog.gloss_entries(["f2", "f1"], annotations)] == ["g3", "g1", "g2"]
    assert all(entry["@type"] == "Gloss" for entry in gog.gloss_entries(["f1"], annotations))


def test_expand_follows_the_reference_rules() -> None:
    obj = {"@id": "https://s/v1/id/o", "title": "t0", "__rerum": {"generatedBy": GOG}, "_id": "o"}
    annotations = [
        {"@id": "https://s/v1/id/a1", "label": "L", "body": {"title": {"value": "t1", "evidence": "e"}}},
        {"@id": "https://s/v1/id/a2", "name": "N", "evidence": "ae", "body": {"title": "t2"}},
        {"@id": "https://s/v1/id/a3", "body": {"color": {"value": "red", "source": "s"}}},
        {"@id": "https://s/v1/id/a4", "body": {"a": 1, "b": 2}},
        {"@id": "https://s/v1/id/a5", "body": ["not", "an", "object"]},
    ]
    expanded = gog.expand(obj, annotations)
    note = gog.ASSEMBLER_NOTE
    assert expanded["title"] == [
        "t0",
        {"value": "t1", "source": {"citationSource": "https://s/v1/id/a1", "citationNote": "L", "comment": note},
         "evidence": "e"},
        {"value": "t2", "source": {"citationSource": "https://s/v1/id/a2", "citationNote": "N", "comment": note},
         "evidence": "ae"},
    ]  # fmt: skip
    assert expanded["color"] == {"value": "red", "source": "s", "evidence": ""}
    assert "a" not in expanded and "0" not in expanded
    assert obj["title"] == "t0"  # the stored object is not changed
    no_label = gog.expand(obj, [{"id": "urn:a", "body": {"k": None}}])["k"]
    assert no_label["source"]["citationNote"] == "Composed object from DEER"
    assert no_label["source"]["citationSource"] == "urn:a"
    assert no_label["value"] is None


def test_describing_annotations_accept_the_target_forms() -> None:
    condition = gog.describing_annotations({"@id": "http://s/v1/id/o", "__rerum": {"generatedBy": GOG}})
    target = condition["$and"][2]["$or"]
    assert target == [
        {"target": {"$in": ["http://s/v1/id/o", "https://s/v1/id/o"]}},
        {"target.@id": {"$in": ["http://s/v1/id/o", "https://s/v1/id/o"]}},
        {"target.id": {"$in": ["http://s/v1/id/o", "https://s/v1/id/o"]}},
    ]
    assert condition["$and"][3] == {
        "__rerum.generatedBy": {"$in": ["http://store.rerum.io/v1/id/61043ad4ffce846a83e700dd", GOG]}
    }
