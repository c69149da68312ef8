"""`rerum import` / `rerum export` as an operator runs them: real PostgreSQL, real Valkey, a real server."""

from __future__ import annotations

import asyncio
import gzip
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import httpx
import pytest

from rerum_server.embedded.redis import EmbeddedRedis
from tests.support.database import DatabaseServer, fingerprint
from tests.support.mongo_export import OLD_PREFIX, collection, ids_of, lines
from tests.support.processes import poll
from tests.support.server import RunningServer, new_namespace, scratch

TREES = 150  # 600 documents: every shape (root, released version with slug, version, deleted shell)


def rerum(*args: str, env: dict[str, str], stdin: bytes | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "rerum_server", *args],
        env={**os.environ, **env},
        input=None if stdin is None else stdin.decode(),
        capture_output=True,
        text=True,
        timeout=300,
    )


def offline(database_url: str, **more: str) -> dict[str, str]:
    """The environment of an import into a database no caching server reads."""
    return {"DATABASE_URL": database_url, "CACHE_ENABLED": "false", **more}


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    server = EmbeddedRedis(scratch("import-redis"))
    yield server.start()
    server.stop()


@pytest.fixture(scope="module")
def served(test_database: DatabaseServer, redis_url: str) -> Iterator[RunningServer]:
    running = RunningServer(
        workers=1,
        data_dir=scratch("import-server"),
        database_url=test_database.new_database(),
        env={"REDIS_URL": redis_url, "CACHE_NAMESPACE": new_namespace(redis_url)},
    )
    yield running
    running.stop()


def test_import_into_a_served_database_clears_the_cache_and_keeps_every_tree(
    served: RunningServer, tmp_path: Path
) -> None:
    documents = collection(TREES)
    a, b, c, d = ids_of(documents[:4])
    source = tmp_path / "rerum.json.gz"
    source.write_bytes(gzip.compress(("\n".join(lines(documents, canonical=True)) + "\n").encode()))
    with httpx.Client(base_url=served.url, timeout=30) as http:
        assert http.get(f"/v1/id/{c}").status_code == 404
        # the 404 is now cached; the import must not leave it behind
        assert http.get(f"/v1/id/{c}").headers["x-cache"] == "HIT"
        result = rerum("import", str(source), "--id-prefix-from", OLD_PREFIX, env=served.env)
        assert result.returncode == 0, result.stderr
        assert f"read {len(documents):,} documents: {len(documents):,} stored" in result.stderr
        assert "cleared" in result.stderr
        got = http.get(f"/v1/id/{c}")
        assert got.status_code == 200
        prefix = served.env["RERUM_ID_PREFIX"]
        assert got.json()["id"] == prefix + c
        history = http.get(f"/v1/history/{c}").json()
        assert [doc["id"] for doc in history] == [prefix + b, prefix + a]
        since = http.get(f"/v1/since/{a}").json()
        assert [doc["id"] for doc in since] == [prefix + b, prefix + c]  # d is deleted: out of the tree
        assert http.get("/v1/id/slug-0").json()["id"] == prefix + b
        shell = http.get(f"/v1/id/{d}").json()
        assert shell["__deleted"]["object"]["@id"] == prefix + d
        assert shell["__deleted"]["time"] == "2021-03-03T00:00:00.000"


def test_export_then_import_into_an_empty_store_round_trips(
    test_database: DatabaseServer, tmp_path: Path
) -> None:
    first, second = test_database.new_database(), test_database.new_database()
    source = tmp_path / "relaxed.json"
    source.write_text("[\n" + ",\n".join(lines(collection(TREES), canonical=False)) + "\n]\n")
    assert rerum("import", "--jsonArray", str(source), env=offline(first)).returncode == 0
    exported = tmp_path / "export.json.gz"
    assert rerum("export", "-o", str(exported), env=offline(first)).returncode == 0
    result = rerum("import", str(exported), env=offline(second))
    assert result.returncode == 0, result.stderr
    assert fingerprint(second) == fingerprint(first)  # same documents, same text, same order
    again = rerum("export", "--json-array", env=offline(second))
    assert (
        again.stdout.replace(",\n", "\n").strip("[]\n")
        == gzip.decompress(exported.read_bytes()).decode().strip()
    )


async def _imported_so_far(dsn: str) -> int:
    connection = await asyncpg.connect(dsn)
    try:
        if await connection.fetchval("SELECT to_regclass('rerum_import')") is None:
            return 0
        return await connection.fetchval("SELECT coalesce(max(items), 0) FROM rerum_import")
    finally:
        await connection.close()


def test_an_interrupted_import_resumes_after_its_last_batch_and_a_second_run_adds_nothing(
    test_database: DatabaseServer,
) -> None:
    dsn = test_database.new_database()
    documents = collection(6_000)  # 24,000 documents: two full batches and part of a third
    text = ("\n".join(lines(documents, canonical=True)) + "\n").encode()
    cut = text.index(b"\n", len(text) * 3 // 5) + 1  # the first 60 %: batches 1 (and 2) can commit
    process = subprocess.Popen(
        [sys.executable, "-m", "rerum_server", "import"],
        env={**os.environ, **offline(dsn)},
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    assert process.stdin is not None
    process.stdin.write(text[:cut])
    process.stdin.flush()
    poll(lambda: asyncio.run(_imported_so_far(dsn)) >= 10_000, deadline_s=120)
    process.send_signal(signal.SIGKILL)  # no clean-up of any kind
    process.wait()
    committed = asyncio.run(_imported_so_far(dsn))
    assert committed % 10_000 == 0 and 0 < committed < len(documents)
    result = rerum("import", env=offline(dsn), stdin=text)
    assert result.returncode == 0, result.stderr
    assert f"resumed after document {committed:,}" in result.stderr
    assert f"{len(documents) - committed:,} stored, 0 already present" in result.stderr
    count, _ = fingerprint(dsn)
    assert count == len(documents)
    twice = rerum("import", env=offline(dsn), stdin=text)
    assert "read 0 documents: 0 stored" in twice.stderr
    assert fingerprint(dsn)[0] == len(documents)


def test_malformed_documents_are_reported_by_line_and_the_rest_imported(
    test_database: DatabaseServer, tmp_path: Path
) -> None:
    dsn = test_database.new_database()
    good = lines(collection(3), canonical=True)
    bad = {
        3: "{not json",
        6: good[1].replace('"$numberDouble": "', '"$numberDouble": "NaN", "x": "'),
        8: '{"@id": "x", "__rerum": {"history": {"prime": "root", "previous": "", "next": []}}}',
        10: good[5].replace('"slug-4"', '"slug-0"').replace("6040000000000005", "60400000000fff05"),
        12: '{"_id": "a", "@id": "x", "b": {"$binary": {"base64": "", "subType": "00"}}, "__deleted": {"object": {}}}',
    }
    rows = list(good)
    for line_number in sorted(bad):
        rows.insert(line_number - 1, bad[line_number])
    source = tmp_path / "mixed.json"
    source.write_text("\n".join(rows) + "\n\n")
    result = rerum("import", str(source), env=offline(dsn))
    assert result.returncode == 1
    reported = [line for line in result.stderr.splitlines() if line.startswith("rejected ")]
    assert [line.split(":", 1)[0] for line in reported] == [f"rejected line {n}" for n in sorted(bad)]
    assert "not JSON" in reported[0]
    assert "NaN" in reported[1] or "other keys" in reported[1]
    assert "no _id" in reported[2]
    assert "slug belongs to another document" in reported[3]
    assert "BSON binary" in reported[4]
    assert fingerprint(dsn)[0] == len(good)


def test_an_import_refuses_to_start_when_it_could_not_clear_the_cache_of_the_database(
    test_database: DatabaseServer, tmp_path: Path
) -> None:
    dsn = test_database.new_database()
    source = tmp_path / "one.json"
    source.write_text(lines(collection(1), canonical=True)[0] + "\n")
    result = rerum("import", str(source), env={"DATABASE_URL": dsn, "REDIS_URL": "", "REDIS_HOST": ""})
    assert result.returncode == 1
    assert "set REDIS_URL" in result.stderr
    unreachable = rerum(
        "import", str(source), env={"DATABASE_URL": dsn, "REDIS_URL": "redis://127.0.0.1:9/0"}
    )
    assert unreachable.returncode == 1 and "did not start" in unreachable.stderr
    assert asyncio.run(_imported_so_far(dsn)) == 0
