"""The seed's race test, scaled: write-then-read pairs, each request on a new connection.

Every pair first warms the cache (reads that fill entries on whichever workers answer), then writes,
then reads on a new connection and checks the exact expected content. A read that does not show the
write is stale. ``X-Rerum-Worker`` tells which worker answered each request.
"""

from __future__ import annotations

import http.client
import itertools
import json
import threading
import uuid
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: Any

    @property
    def worker(self) -> str:
        return self.headers.get("x-rerum-worker", "")


@dataclass
class Tally:
    pairs: Counter[str] = field(default_factory=Counter)
    stale: Counter[str] = field(default_factory=Counter)
    other_worker: int = 0
    reads: int = 0
    examples: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, kind: str, fresh: bool, write: Reply, read: Reply, detail: str) -> None:
        with self.lock:
            self.pairs[kind] += 1
            self.reads += 1
            self.other_worker += read.worker != write.worker
            if not fresh:
                self.stale[kind] += 1
                if len(self.examples) < 5:
                    self.examples.append(f"{kind}: {detail}")


class Api:
    """Requests to one server, each on a fresh TCP connection (as the seed's curl loop does)."""

    def __init__(self, base_url: str, token: str) -> None:
        parts = urlsplit(base_url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self.auth = {"Authorization": "Bearer " + token}

    def call(self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None) -> Reply:
        connection = http.client.HTTPConnection(self.host, self.port, timeout=30)
        try:
            payload = None if body is None else (body if isinstance(body, str) else json.dumps(body))
            sent = dict(headers or {})
            if payload is not None:
                sent.setdefault("Content-Type", "application/json")
            connection.request(method, path, body=payload, headers=sent)
            response = connection.getresponse()
            raw = response.read()
            reply_headers = {name.lower(): value for name, value in response.getheaders()}
            parsed = json.loads(raw) if raw and "json" in reply_headers.get("content-type", "") else raw
            return Reply(response.status, reply_headers, parsed)
        finally:
            connection.close()

    def write(self, method: str, path: str, body: Any = None, **headers: str) -> Reply:
        reply = self.call(method, path, body, {**self.auth, **headers})
        assert reply.status in (200, 201, 204), (method, path, reply.status, reply.body)
        return reply

    def create(self, body: dict[str, Any]) -> dict[str, Any]:
        return self.write("POST", "/v1/api/create", body).body

    def get(self, key: str) -> Reply:
        return self.call("GET", "/v1/id/" + key)

    def query(self, filter_doc: dict[str, Any]) -> Reply:
        return self.call("POST", "/v1/api/query", filter_doc)


def _key(doc: dict[str, Any]) -> str:
    return doc["@id"].rsplit("/", 1)[1]


def _warm(read: Callable[[], Reply], times: int = 3) -> None:
    for _ in range(times):
        read()


def _ids(reply: Reply) -> list[str]:
    return [item["@id"] for item in reply.body] if isinstance(reply.body, list) else []


def pair(api: Api, kind: str, tally: Tally) -> None:
    """One write-then-read pair of ``kind``, recorded in ``tally``."""
    m = uuid.uuid4().hex
    if kind == "overwrite→id":
        doc = api.create({"mark": m, "n": 0})
        _warm(lambda: api.get(_key(doc)))
        write = api.write("PUT", "/v1/api/overwrite", {"@id": doc["@id"], "mark": m, "n": 1})
        read = api.get(_key(doc))
        tally.record(kind, read.body.get("n") == 1, write, read, str(read.body.get("n")))
    elif kind in ("update→id", "patch→id", "set→id", "unset→id"):
        doc = api.create({"mark": m, "a": 0, "gone": 1})
        _warm(lambda: api.get(_key(doc)))
        if kind == "update→id":
            write = api.write("PUT", "/v1/api/update", {"@id": doc["@id"], "mark": m, "a": 1})
            expected = {"a": 1}
        elif kind == "patch→id":
            write = api.write("PATCH", "/v1/api/patch", {"@id": doc["@id"], "a": 1})
            expected = {"a": 1}
        elif kind == "set→id":
            write = api.write("PATCH", "/v1/api/set", {"@id": doc["@id"], "added": 1})
            expected = {"added": 1}
        else:
            write = api.write("PATCH", "/v1/api/unset", {"@id": doc["@id"], "gone": None})
            expected = {}
        version = write.body
        old = api.get(_key(doc))
        fresh = old.body.get("__rerum", {}).get("history", {}).get("next") == [version["@id"]]
        tally.record(kind + " (old version)", fresh, write, old, "next=" + str(old.body.get("__rerum")))
        new = api.get(_key(version))
        fresh = all(new.body.get(k) == v for k, v in expected.items()) and (
            kind != "unset→id" or "gone" not in new.body
        )
        tally.record(kind + " (new version)", fresh, write, new, str(new.body))
    elif kind == "delete→id":
        doc = api.create({"mark": m})
        _warm(lambda: api.get(_key(doc)))
        write = api.write("DELETE", "/v1/api/delete/" + _key(doc))
        read = api.get(_key(doc))
        tally.record(kind, "__deleted" in read.body, write, read, str(read.body)[:80])
    elif kind == "release→id":
        doc = api.create({"mark": m})
        _warm(lambda: api.get(_key(doc)))
        write = api.write("PATCH", "/v1/api/release/" + _key(doc))
        read = api.get(_key(doc))
        tally.record(kind, bool(read.body["__rerum"]["isReleased"]), write, read, "isReleased empty")
    elif kind == "create→query":
        _warm(lambda: api.query({"mark": m}))
        write = api.write("POST", "/v1/api/create", {"mark": m})
        read = api.query({"mark": m})
        tally.record(kind, _ids(read) == [write.body["@id"]], write, read, str(_ids(read)))
    elif kind == "overwrite→query":
        doc = api.create({"mark": m})
        _warm(lambda: api.query({"mark": m}))
        write = api.write("PUT", "/v1/api/overwrite", {"@id": doc["@id"], "mark": m + "-moved"})
        read = api.query({"mark": m})
        tally.record(kind, _ids(read) == [], write, read, str(_ids(read)))
    elif kind == "create→search":
        word = "w" + m[:12]
        _warm(lambda: api.call("POST", "/v1/api/search", word, {"Content-Type": "text/plain"}))
        write = api.write("POST", "/v1/api/create", {"body": {"value": word}})
        read = api.call("POST", "/v1/api/search", word, {"Content-Type": "text/plain"})
        tally.record(kind, _ids(read) == [write.body["@id"]], write, read, str(_ids(read)))
    elif kind == "update→history":
        root = api.create({"mark": m})
        child = api.write("PUT", "/v1/api/update", {"@id": root["@id"], "v": 1}).body
        _warm(lambda: api.call("GET", "/v1/history/" + _key(child)))
        write = api.write("PUT", "/v1/api/update", {"@id": root["@id"], "v": 2})
        read = api.call("GET", "/v1/history/" + _key(child))
        nexts = read.body[0]["__rerum"]["history"]["next"] if read.body else []
        tally.record(kind, nexts == [child["@id"], write.body["@id"]], write, read, str(nexts))
    elif kind == "update→since":
        root = api.create({"mark": m})
        _warm(lambda: api.call("GET", "/v1/since/" + _key(root)))
        write = api.write("PUT", "/v1/api/update", {"@id": root["@id"], "v": 1})
        read = api.call("GET", "/v1/since/" + _key(root))
        tally.record(kind, _ids(read) == [write.body["@id"]], write, read, str(_ids(read)))
    elif kind == "bulkCreate→query":
        _warm(lambda: api.query({"mark": m}))
        write = api.write("POST", "/v1/api/bulkCreate", [{"mark": m, "i": 1}, {"mark": m, "i": 2}])
        read = api.query({"mark": m})
        tally.record(kind, _ids(read) == [doc["@id"] for doc in write.body], write, read, str(_ids(read)))
    else:
        raise ValueError(kind)


KINDS = (
    "overwrite→id", "update→id", "patch→id", "set→id", "unset→id", "delete→id", "release→id",
    "create→query", "overwrite→query", "create→search", "update→history", "update→since", "bulkCreate→query",
)  # fmt: skip


def run_pairs(api: Api, rounds: int, threads: int = 8) -> Tally:
    """``rounds`` of every kind, spread over ``threads`` concurrent clients."""
    tally = Tally()
    jobs = list(itertools.islice(itertools.cycle(KINDS), rounds * len(KINDS)))
    with ThreadPoolExecutor(threads) as pool:
        for future in [pool.submit(pair, api, kind, tally) for kind in jobs]:
            future.result()
    return tally
