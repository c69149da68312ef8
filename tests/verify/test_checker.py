"""The checker on hand-made histories: each kind of anomaly found and counted, clean histories pass."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from rerum_server.cli import main
from rerum_server.verify.checker import HistoryError, check
from rerum_server.verify.history import FaultEvent, History, from_lines, load, save, to_lines
from rerum_server.verify.report import render
from tests.verify.histories import deleted, history, read, view, write

CREATE = write("create", 1, 0, 10, new="k1")
OVERWRITE = write("overwrite", 2, 20, 30, key="k1")  # seq 2: "a/even"; seq 1 was "a/odd"


def test_a_read_that_misses_an_acknowledged_write_is_stale() -> None:
    report = check(history(CREATE, OVERWRITE, read("id", 40, 50, view("k1", 1), key="k1")))
    assert report.anomalies == {("id", "stale"): 1}
    (anomaly,) = report.examples
    assert anomaly.kind == "stale" and anomaly.read.invoke_ns == 40
    assert [w.wrote.seq for w in anomaly.writes if w.wrote] == [2]
    assert "acknowledged" in anomaly.detail


def test_a_read_of_a_state_no_write_had_begun_is_a_phantom() -> None:
    report = check(
        history(
            CREATE,
            OVERWRITE,
            read("id", 12, 18, view("k1", 2), key="k1"),  # seq 2 before its write was invoked
            read("id", 40, 50, view("k1", 7), key="k1"),  # a seq nobody wrote
        )
    )
    assert report.anomalies == {("id", "phantom"): 2}


def test_a_client_that_sees_an_object_go_back_is_non_monotonic() -> None:
    slow = write("overwrite", 2, 20, 100, key="k1")
    report = check(
        history(
            CREATE,
            slow,
            # each read alone is fine (the write is in flight); together, client 1 went back in time
            read("id", 30, 40, view("k1", 2), key="k1", client=1),
            read("query", 50, 60, view("k1", 1), filter={"obj": "a"}, client=1),
            # forwards is fine, and so is the same pair seen by two different clients
            read("id", 30, 40, view("k1", 1), key="k1", client=2),
            read("id", 50, 60, view("k1", 2), key="k1", client=2),
            read("id", 30, 40, view("k1", 2), key="k1", client=3),
            read("id", 50, 60, view("k1", 1), key="k1", client=4),
        )
    )
    assert report.anomalies == {("query", "non-monotonic"): 1}
    (anomaly,) = report.examples
    assert anomaly.earlier is not None and anomaly.earlier.kind == "id" and anomaly.read.client == 1


def test_a_query_missing_a_matching_version_or_keeping_one_that_no_longer_matches() -> None:
    update = write("update", 3, 40, 50, key="k1", new="k2")
    report = check(
        history(
            CREATE,
            OVERWRITE,
            update,
            read("query", 32, 38, filter={"tag": "a/even"}),  # k1 (seq 2) matches: missing
            read("query", 32, 38, view("k1", 1), filter={"tag": "a/odd"}),  # seq 1 is gone: present
            read("query", 32, 38, view("k1", 2), filter={"tag": "a/even"}),  # right
            read("query", 60, 70, view("k1", 2, next=("k2",)), filter={"obj": "a"}),  # k2 missing
            read("query", 60, 70, view("k1", 2, next=("k2",)), view("k2", 3), filter={"obj": "a"}),
        )
    )
    assert report.anomalies == {("query", "missing"): 2, ("query", "present"): 1}
    assert report.reads_checked == {"query": 5}


def test_a_search_missing_a_matching_version_or_keeping_one_that_no_longer_matches() -> None:
    report = check(
        history(
            CREATE,
            OVERWRITE,
            read("search", 40, 50, text="vappleeven"),  # seq 2 has the word: missing
            read("search", 40, 50, view("k1", 1), text="vappleodd"),  # seq 1's word is gone: present
            read("search", 40, 50, view("k1", 2), text="vapple"),  # right
            read("search", 40, 50, view("k1", 1), text="vapple"),  # the old content: stale
        )
    )
    assert report.anomalies == {("search", "missing"): 1, ("search", "present"): 1, ("search", "stale"): 1}


def test_concurrent_reads_may_see_either_state_and_later_reads_the_new_one() -> None:
    report = check(
        history(
            CREATE,
            OVERWRITE,
            read("id", 25, 28, view("k1", 1), key="k1", client=1),
            read("id", 25, 28, view("k1", 2), key="k1", client=2),
            read("query", 15, 35, view("k1", 1), filter={"tag": "a/odd"}, client=3),
            read("query", 15, 35, filter={"tag": "a/odd"}, client=4),
            read("search", 15, 35, text="vappleeven", client=5),
            read("search", 15, 35, view("k1", 2), text="vappleeven", client=6),
            read("id", 40, 50, view("k1", 2), key="k1", client=1),
            read("id", 5, 8, key="k1", status=404, client=7),  # before the create answered: not there yet
        )
    )
    assert report.ok, report.examples
    assert report.total_checked == 8


def test_writes_that_failed_or_timed_out_may_explain_later_reads_but_never_make_one_stale() -> None:
    failed = write("overwrite", 2, 20, 30, key="k1", outcome="failed")
    lost = write("update", 2, 20, 30, key="b1", outcome="unknown", obj="b")  # its new key never arrived
    report = check(
        history(
            CREATE,
            failed,
            read("id", 40, 50, view("k1", 2), key="k1", client=1),  # applied after all
            read("id", 40, 50, view("k1", 1), key="k1", client=2),  # or not: never stale
            read("id", 60, 70, view("k1", 1), key="k1", client=3),
            read("id", 80, 90, view("k1", 2), key="k1", client=3),  # applied late: forwards is fine
            write("create", 1, 0, 10, new="b1", obj="b"),
            lost,
            read("id", 40, 50, view("b1", 1, obj="b", next=("bX",)), key="b1", obj="b", client=1),
            read("id", 40, 50, view("b1", 1, obj="b"), key="b1", obj="b", client=2),
            read(
                "query",
                40,
                50,
                view("b1", 1, obj="b", next=("bX",)),
                view("bX", 2, obj="b"),  # the lost update's version, recognised by its marker
                filter={"obj": "b"},
                obj="b",
                client=4,
            ),
        )
    )
    assert report.ok, report.examples
    # The lost version is still held to its content: a wrong seq under that key is a phantom.
    wrong = read("query", 40, 50, view("b1", 1, obj="b", next=("bX",)), view("bX", 5, obj="b"),
                 filter={"obj": "b"}, obj="b")  # fmt: skip
    assert check(history(write("create", 1, 0, 10, new="b1", obj="b"), lost, wrong)).count("phantom") == 1


def test_version_links_of_update_release_and_delete() -> None:
    update = write("update", 2, 20, 30, key="k1", new="k2")
    release = write("release", 3, 40, 50, key="k2")
    b_create = write("create", 1, 0, 10, new="b1", obj="b")
    b_update = write("update", 2, 20, 30, key="b1", new="b2", obj="b")
    b_delete = write("delete", 3, 40, 50, key="b2", obj="b")
    good = [
        read("since", 60, 70, view("k2", 2, released=True), key="k1"),
        read("history", 60, 70, view("k1", 1, next=("k2",), releases=("k2",)), key="k2"),
        read("id", 60, 70, deleted("b2", obj="b"), key="b2", obj="b"),
        read("id", 60, 70, view("b1", 1, obj="b"), key="b1", obj="b"),  # healed: no next any more
        read("since", 60, 70, key="b1", obj="b"),
        read("history", 60, 70, key="b2", status=404, obj="b"),
    ]
    stale = [
        read("since", 60, 70, key="k1"),  # the new version is missing
        read("history", 60, 70, view("k1", 1, next=("k2",)), key="k2"),  # the release is missing
        read("id", 60, 70, view("b2", 2, obj="b"), key="b2", obj="b"),  # not deleted
        read("id", 60, 70, view("b1", 1, obj="b", next=("b2",)), key="b1", obj="b"),  # not healed
        read("since", 60, 70, view("b2", 2, obj="b"), key="b1", obj="b"),
    ]
    report = check(history(CREATE, update, release, b_create, b_update, b_delete, *good, *stale))
    assert report.anomalies == {("since", "stale"): 2, ("history", "stale"): 1, ("id", "stale"): 2}


def test_a_query_answer_no_single_state_had_is_torn() -> None:
    update = write("update", 2, 20, 30, key="k1", new="k2")
    # k1 already links to k2, but k2 itself is not there (each alone fits a state, together none)
    torn = read("query", 22, 28, view("k1", 1, next=("k2",)), filter={"obj": "a"})
    assert check(history(CREATE, update, torn)).anomalies == {("query", "torn"): 1}


def test_histories_the_checker_cannot_judge_are_refused() -> None:
    with pytest.raises(HistoryError, match="overlaps"):
        check(history(CREATE, write("overwrite", 2, 5, 30, key="k1")))
    with pytest.raises(HistoryError, match="follows a write that is failed"):
        check(
            history(
                CREATE,
                write("overwrite", 2, 20, 30, key="k1", outcome="failed"),
                write("overwrite", 3, 40, 50, key="k1"),
            )
        )


def _sample() -> History:
    ops = history(
        CREATE,
        OVERWRITE,
        write("release", 3, 60, 70, key="k1", outcome="failed"),
        read("id", 40, 50, view("k1", 1), key="k1", cache="HIT"),
        read("query", 40, 50, view("k1", 2), filter={"obj": "a"}, cache="BYPASS"),
        read("history", 40, 50, key="k1", client=3),
    ).operations
    return History(ops, (FaultEvent("redis-pause", 35, 55, "SIGSTOP"),), {"url": "http://x", "clients": 3})


def test_a_saved_history_loads_back_equal_and_checks_the_same(tmp_path: Path) -> None:
    sample = _sample()
    assert from_lines(to_lines(sample)) == sample
    save(sample, tmp_path / "history.jsonl")
    loaded = load(tmp_path / "history.jsonl")
    assert loaded == sample
    assert check(loaded) == check(sample)
    assert check(loaded).anomalies == {("id", "stale"): 1}


def test_the_table_counts_operations_checks_anomalies_faults_refusals_and_bypasses() -> None:
    sample = _sample()
    text = render(sample, check(sample))
    rows = {line.split()[0]: line.split()[1:] for line in text.splitlines()[2:] if line.split()}
    # columns: ops ok failed unknown checked stale phantom non-mono missing present torn 503 bypass
    assert rows["id"] == ["1", "1", "0", "0", "1", "1", "0", "0", "0", "0", "0", "0", "0"]
    assert rows["query"][-1] == "1"  # one read bypassed the cache
    assert rows["release"] == ["1", "0", "1", "0", "-", "-", "-", "-", "-", "-", "-", "1", "0"]
    assert rows["total"][0] == "6"
    assert "reads checked: 3 · anomalies: 1 · faults injected: redis-pause ×1" in text
    during = {
        line.split()[0]: line.split()[1:] for line in text.splitlines() if line.startswith("redis-pause")
    }
    assert during["redis-pause"] == ["1", "3", "0", "1"]  # injected, ops overlapping it, 503, bypass
    assert "STALE (client 1)" in text


def test_rerum_verify_check_rechecks_a_saved_history_and_exits_1_on_an_anomaly(tmp_path: Path) -> None:
    stale, clean, broken = tmp_path / "stale.jsonl", tmp_path / "clean.jsonl", tmp_path / "broken.jsonl"
    save(_sample(), stale)
    save(history(CREATE, OVERWRITE, read("id", 40, 50, view("k1", 2), key="k1")), clean)
    save(history(CREATE, write("overwrite", 2, 5, 30, key="k1")), broken)
    runner = CliRunner()
    result = runner.invoke(main, ["verify", "--check", str(stale)])
    assert result.exit_code == 1 and "STALE (client 1)" in result.stdout, result.output
    result = runner.invoke(main, ["verify", "--check", str(clean)])
    assert result.exit_code == 0 and "reads checked: 1 · anomalies: 0" in result.stdout, result.output
    result = runner.invoke(main, ["verify", "--check", str(broken)])
    assert result.exit_code == 1 and "overlaps the next write" in result.output, result.output
