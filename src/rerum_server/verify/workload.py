"""Many concurrent clients running a mixed workload against a server, every operation recorded.

Clients are asyncio tasks; each request goes on a new TCP connection (no keep-alive), so consecutive
requests of one client land on any worker. Clients are grouped; each group shares a small pool of
objects so that reads and writes of the same objects collide all the time.

Every write carries a marker in the document it writes, ``{"obj": <object>, "seq": n}``: ``n``
increases with every write to the object, and writes to one object are serialised (a per-object lock,
never held across objects), so ``seq`` totally orders the object's versions. An object whose write
did not end ``ok`` (it may or may not have been applied, now or later) is retired: it is still read,
never written again, and a new object takes its place. So is an object after ``lifespan`` writes
(deleted, usually), which keeps every object's version tree small.
"""

from __future__ import annotations

import asyncio
import random
import secrets
import string
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from rerum_server.verify.history import (
    History,
    Marker,
    Observation,
    Operation,
    Outcome,
    Recorder,
    View,
    now_ns,
)

READ_WEIGHTS = {"id": 40, "since": 15, "history": 10, "query": 15, "search": 15}
WRITE_WEIGHTS = {"overwrite": 35, "update": 20, "patch": 20, "release": 8, "delete": 5}


@dataclass(frozen=True)
class WorkloadConfig:
    """What to run: against ``urls`` (hosts of one deployment; every request goes to one of them at
    random) with ``token`` (a bearer token of the agent that owns the objects).

    The run lasts ``duration_s`` seconds and then goes on until at least ``operations`` operations are
    recorded: a test bounds its run by a count (``duration_s=0``), so a slow machine makes it longer,
    never weaker; a fault schedule needs its seconds, so a fault run gives both.
    """

    urls: tuple[str, ...]
    token: str
    duration_s: float = 20.0
    operations: int = 0
    clients: int = 16
    clients_per_pool: int = 4
    objects_per_pool: int = 12
    write_share: float = 0.3
    lifespan: int = 10
    timeout_s: float = 10.0
    seed: int | None = None


@dataclass
class LiveObject:
    """A logical object: its version chain as acknowledged so far (root first)."""

    name: str
    word: str
    keys: list[str]
    uris: dict[str, str]
    seq: int = 1
    writes: int = 1
    head_released: bool = False
    retired: bool = False
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    @property
    def head(self) -> str:
        return self.keys[-1]


@dataclass
class Pool:
    """The objects one group of clients shares."""

    number: int
    slots: list[LiveObject | None]
    replacing: set[int] = field(default_factory=set)
    retired: deque[LiveObject] = field(default_factory=lambda: deque(maxlen=8))
    created: int = 0


@dataclass(frozen=True)
class _Reply:
    status: int
    headers: httpx.Headers
    body: Any


def key_of(uri: str) -> str:
    """The key (``_id`` or slug) at the end of an object URI."""
    return uri.rstrip("/").rsplit("/", 1)[-1]


def view_of(doc: Any) -> View:
    """The ``View`` of one document of an answer (ValueError if it is not a RERUM document)."""
    if not isinstance(doc, dict):
        raise ValueError("not a JSON object")
    uri = doc.get("@id", doc.get("id"))
    if not isinstance(uri, str):
        raise ValueError("no @id")
    shell = doc.get("__deleted")
    if isinstance(shell, dict):
        original = shell.get("object") if isinstance(shell.get("object"), dict) else {}
        return View(key_of(uri), original.get("obj"), None, deleted=True)
    rerum = doc.get("__rerum") if isinstance(doc.get("__rerum"), dict) else {}
    links = rerum.get("history") if isinstance(rerum.get("history"), dict) else {}
    releases = rerum.get("releases") if isinstance(rerum.get("releases"), dict) else {}
    seq = doc.get("seq")
    return View(
        key_of(uri),
        doc.get("obj") if isinstance(doc.get("obj"), str) else None,
        seq if isinstance(seq, int) and not isinstance(seq, bool) else None,
        released=bool(rerum.get("isReleased")),
        history_next=tuple(key_of(u) for u in links.get("next", []) if isinstance(u, str)),
        releases_next=tuple(key_of(u) for u in releases.get("next", []) if isinstance(u, str)),
    )


def content(name: str, word: str, seq: int) -> dict[str, Any]:
    """The document a write of ``seq`` writes: the marker, a tag that flips with every write (so
    queries by tag gain and lose versions), and searchable words (one of them flipping too)."""
    parity = "even" if seq % 2 == 0 else "odd"
    return {
        "obj": name,
        "seq": seq,
        "tag": f"{name}/{parity}",
        "body": {"type": "TextualBody", "value": f"{word} {word}{parity}"},
    }


class Client:
    """One simulated client: a loop of random operations on its group's pool, one at a time."""

    def __init__(self, number: int, pool: Pool, run: str, config: WorkloadConfig, recorder: Recorder) -> None:
        self.number = number
        self.pool = pool
        self.run = run
        self.config = config
        self.recorder = recorder
        self.rng = random.Random(None if config.seed is None else config.seed * 1000 + number)
        self.auth = {"Authorization": "Bearer " + config.token}

    async def loop(self, deadline: float) -> None:
        """Run operations until ``deadline`` (``time.monotonic()``) has passed and the recorder holds
        ``config.operations`` operations."""
        limits = httpx.Limits(max_keepalive_connections=0)  # every request on a new connection
        async with httpx.AsyncClient(timeout=self.config.timeout_s, limits=limits) as http:
            self.http = http
            while time.monotonic() < deadline or len(self.recorder) < self.config.operations:
                await self.step()

    async def step(self) -> None:
        """One operation: fill an empty slot, or write or read an object of the pool."""
        slot = self.rng.randrange(len(self.pool.slots))
        obj = self.pool.slots[slot]
        if obj is None:
            if slot in self.pool.replacing:
                await asyncio.sleep(0.001)  # another client is creating it; do not spin
                return
            await self.replace(slot)
            return
        if self.rng.random() < self.config.write_share and not obj.retired and not obj.lock.locked():
            async with obj.lock:
                if obj.retired:
                    return
                await self.write(obj)
            if obj.retired and self.pool.slots[slot] is obj:
                self.pool.retired.append(obj)
                self.pool.slots[slot] = None
                await self.replace(slot)
            return
        if self.pool.retired and self.rng.random() < 0.1:
            obj = self.rng.choice(list(self.pool.retired))  # deleted objects must stay deleted
        await self.read(obj)

    # ------------------------------------------------------------------ HTTP

    async def _send(
        self, method: str, path: str, *, json: Any = None, text: str | None = None, auth: bool = False
    ) -> tuple[_Reply | None, Outcome, str | None]:
        """One request; (reply, outcome, error). No reply: ``failed`` if it was never sent."""
        headers = dict(self.auth) if auth else {}
        if text is not None:
            headers["Content-Type"] = "text/plain"
        url = self.rng.choice(self.config.urls) + path
        try:
            response = await self.http.request(method, url, json=json, content=text, headers=headers)
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
            return None, "failed", f"{type(exc).__name__}: {exc}"
        except httpx.HTTPError as exc:
            return None, "unknown", f"{type(exc).__name__}: {exc}"
        try:
            body = response.json() if response.content else None
        except ValueError:
            body = response.text
        return _Reply(response.status_code, response.headers, body), "ok", None

    def _record(
        self,
        kind: str,
        obj: str,
        invoke: int,
        reply: _Reply | None,
        outcome: Outcome,
        error: str | None,
        **facts: Any,
    ) -> Operation:
        operation = Operation(
            client=self.number,
            kind=kind,
            obj=obj,
            invoke_ns=invoke,
            complete_ns=now_ns(),
            outcome=outcome,
            status=None if reply is None else reply.status,
            cache=None if reply is None else reply.headers.get("x-cache"),
            worker=None if reply is None else reply.headers.get("x-rerum-worker"),
            error=error,
            **facts,
        )
        self.recorder.record(operation)
        return operation

    # ------------------------------------------------------------------ writes

    async def replace(self, slot: int) -> None:
        """Create a new object for an empty slot."""
        self.pool.replacing.add(slot)
        try:
            self.pool.created += 1
            name = f"{self.run}-{self.pool.number}-{self.pool.created}"
            word = "v" + "".join(self.rng.choices(string.ascii_lowercase, k=12))
            document = content(name, word, 1)
            invoke = now_ns()
            reply, outcome, error = await self._send("POST", "/v1/api/create", json=document, auth=True)
            uri = reply.body.get("@id") if reply and isinstance(reply.body, dict) else None
            if outcome == "ok" and (reply is None or reply.status != 201 or not isinstance(uri, str)):
                outcome, error = "failed", error or _short(reply)
            key = key_of(uri) if outcome == "ok" and isinstance(uri, str) else None
            self._record(
                "create", name, invoke, reply, outcome, error, key=None, wrote=Marker(name, 1, key, document)
            )
            if outcome == "ok" and key is not None and isinstance(uri, str):
                self.pool.slots[slot] = LiveObject(name, word, [key], {key: uri})
            else:
                # Back off a little, as a real client would: while writes are refused (a fault), a
                # client re-creating at full speed would only crowd out the reads worth checking.
                await asyncio.sleep(0.05)
        finally:
            self.pool.replacing.discard(slot)

    def _choose_write(self, obj: LiveObject) -> str:
        if obj.writes >= self.config.lifespan:
            return "update" if obj.head_released else "delete"
        allowed = {
            kind: weight
            for kind, weight in WRITE_WEIGHTS.items()
            # a released version cannot be overwritten, released again or deleted
            if not (obj.head_released and kind in ("overwrite", "release", "delete"))
        }
        return self.rng.choices(list(allowed), weights=list(allowed.values()))[0]

    async def write(self, obj: LiveObject) -> None:
        """One write to the head of ``obj`` (the caller holds ``obj.lock``)."""
        kind = self._choose_write(obj)
        seq = obj.seq + 1
        head, uri = obj.head, obj.uris[obj.head]
        document: dict[str, Any] | None = content(obj.name, obj.word, seq)
        invoke = now_ns()
        if kind == "overwrite":
            reply, outcome, error = await self._send(
                "PUT", "/v1/api/overwrite", json={"@id": uri, **(document or {})}, auth=True
            )
        elif kind == "update":
            reply, outcome, error = await self._send(
                "PUT", "/v1/api/update", json={"@id": uri, **(document or {})}, auth=True
            )
        elif kind == "patch":
            # PATCH changes the keys it names (all but obj): the model must merge them the same way.
            document = {name: value for name, value in (document or {}).items() if name != "obj"}
            reply, outcome, error = await self._send(
                "PATCH", "/v1/api/patch", json={"@id": uri, **document}, auth=True
            )
        elif kind == "release":
            document = None
            reply, outcome, error = await self._send("PATCH", f"/v1/api/release/{head}", auth=True)
        else:
            document = None
            reply, outcome, error = await self._send("DELETE", f"/v1/api/delete/{head}", auth=True)
        new_uri = reply.body.get("@id") if reply and isinstance(reply.body, dict) else None
        if outcome == "ok" and reply is not None and not 200 <= reply.status < 300:
            outcome, error = "failed", _short(reply)
        if outcome == "ok" and kind in ("update", "patch") and not isinstance(new_uri, str):
            outcome, error = "failed", "no @id in the answer"
        new_key = key_of(new_uri) if outcome == "ok" and kind in ("update", "patch") and new_uri else None
        self._record(
            kind,
            obj.name,
            invoke,
            reply,
            outcome,
            error,
            key=head,
            wrote=Marker(obj.name, seq, new_key, document),
        )
        obj.seq, obj.writes = seq, obj.writes + 1
        if outcome != "ok" or kind == "delete":
            obj.retired = True
        elif new_key is not None and isinstance(new_uri, str):
            obj.keys.append(new_key)
            obj.uris[new_key] = new_uri
            obj.head_released = False
        elif kind == "release":
            obj.head_released = True

    # ------------------------------------------------------------------ reads

    async def read(self, obj: LiveObject) -> None:
        """One read about ``obj``: by id, its history or versions since, a query or a search."""
        kind = self.rng.choices(list(READ_WEIGHTS), weights=list(READ_WEIGHTS.values()))[0]
        keys = list(obj.keys)
        parity = self.rng.choice(("even", "odd"))
        facts: dict[str, Any] = {}
        invoke = now_ns()
        if kind in ("id", "history", "since"):
            if kind == "id":
                key = keys[-1] if self.rng.random() < 0.6 else self.rng.choice(keys)
            elif kind == "history":
                key = self.rng.choice(keys[1:] or keys)
            else:
                key = keys[0] if self.rng.random() < 0.6 else self.rng.choice(keys)
            facts["key"] = key
            reply, outcome, error = await self._send("GET", f"/v1/{kind}/{key}")
        elif kind == "query":
            query = {"obj": obj.name} if self.rng.random() < 0.5 else {"tag": f"{obj.name}/{parity}"}
            facts["filter"] = query
            reply, outcome, error = await self._send("POST", "/v1/api/query?limit=100", json=query)
        else:
            text = obj.word if self.rng.random() < 0.5 else obj.word + parity
            facts["text"] = text
            reply, outcome, error = await self._send("POST", "/v1/api/search?limit=100", text=text)
        observed = None
        if reply is not None:
            try:
                observed = _observation(kind, reply)
            except ValueError as exc:
                outcome, error = "failed", f"{exc}: {_short(reply)}"
        self._record(kind, obj.name, invoke, reply, outcome, error, observed=observed, **facts)


def _observation(kind: str, reply: _Reply) -> Observation:
    """What a read saw; ValueError for an answer that is neither a document list nor a 404."""
    if reply.status == 404:
        return Observation(404)
    if reply.status != 200:
        raise ValueError(f"status {reply.status}")
    if kind == "id":
        return Observation(200, (view_of(reply.body),))
    if not isinstance(reply.body, list):
        raise ValueError("not a list")
    return Observation(200, tuple(view_of(doc) for doc in reply.body))


def _short(reply: _Reply | None) -> str:
    if reply is None:
        return "no answer"
    return f"{reply.status} {str(reply.body)[:120]}"


async def run_workload(
    config: WorkloadConfig,
    recorder: Recorder | None = None,
    *,
    progress: Callable[[int], None] | None = None,
) -> History:
    """Run ``config.clients`` clients for ``config.duration_s`` seconds and at least ``config.operations``
    operations; return the recorded history.

    A nemesis running at the same time records its faults in the same ``recorder``.
    """
    recorder = Recorder() if recorder is None else recorder
    run = secrets.token_hex(4)
    pools = [
        Pool(number, [None] * config.objects_per_pool)
        for number in range(max(1, -(-config.clients // config.clients_per_pool)))
    ]
    clients = [
        Client(number, pools[number // config.clients_per_pool], run, config, recorder)
        for number in range(config.clients)
    ]
    started, wall = time.monotonic(), time.time()
    deadline = started + config.duration_s
    tasks = [asyncio.create_task(client.loop(deadline)) for client in clients]
    if progress is not None:
        while not all(task.done() for task in tasks):
            await asyncio.wait(tasks, timeout=1.0)
            progress(len(recorder))
    await asyncio.gather(*tasks)
    meta = {
        "url": " ".join(config.urls),
        "run": run,
        "clients": config.clients,
        "duration_s": round(time.monotonic() - started, 3),
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(wall)),
    }
    return recorder.history(meta)


def run(config: WorkloadConfig, recorder: Recorder | None = None) -> History:
    """``run_workload`` in a new event loop."""
    return asyncio.run(run_workload(config, recorder))
