"""Histories that are linearizable by construction, for property tests of the checker.

Each operation gets a linearization point inside its [invoke, complete] interval; a sequential model
(written here independently of ``rerum_server.verify.model``) applies every write at its point and
answers every read with the state at its point. Writes that fail or time out are applied or not, at
their point or (timeouts) some time after they completed. Like the workload, the generator never
overlaps two writes of one object and never writes an object again after a write that was not ``ok``.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field, replace
from typing import Any

from hypothesis import strategies as st

from rerum_server.verify.history import History, Observation, Operation, Outcome, View
from tests.verify.histories import WORDS, read, write

OBJECTS = ("a", "b", "c")
Docs = dict[str, dict[str, Any]]


def _apply(docs: Docs, op: Operation, key: str | None) -> None:
    """One write on the head of its object (the generator only writes heads)."""
    sent = op.wrote.content if op.wrote else None
    target = op.key or ""
    if op.kind == "create":
        docs[key or ""] = {
            "content": sent,
            "prev": None,
            "next": [],
            "released": False,
            "rnext": [],
            "gone": False,
        }
    elif op.kind == "overwrite":
        docs[target]["content"] = sent
    elif op.kind in ("update", "patch"):
        body = dict(sent or {})
        if op.kind == "patch":
            body = {**docs[target]["content"], **body}
        docs[key or ""] = {
            "content": body,
            "prev": target,
            "next": [],
            "released": False,
            "rnext": [],
            "gone": False,
        }
        docs[target]["next"].append(key)
    elif op.kind == "release":
        docs[target]["released"] = True
        ancestor = docs[target]["prev"]
        while ancestor is not None:
            if target not in docs[ancestor]["rnext"]:
                docs[ancestor]["rnext"].append(target)
            if docs[ancestor]["released"]:
                break
            ancestor = docs[ancestor]["prev"]
    elif op.kind == "delete":
        parent = docs[target]["prev"]
        if parent is not None:
            docs[parent]["next"].remove(target)
        docs[target]["gone"] = True


def _view(docs: Docs, key: str) -> View:
    doc = docs[key]
    obj = doc["content"].get("obj")
    if doc["gone"]:
        return View(key, obj, None, deleted=True)
    return View(key, obj, doc["content"]["seq"], released=doc["released"], history_next=tuple(doc["next"]),
                releases_next=tuple(doc["rnext"]))  # fmt: skip


def answer(docs: Docs, op: Operation) -> Observation:
    """What a correct server answers ``op`` with while the object's documents are ``docs``."""
    key = op.key or ""
    if op.kind == "id":
        return Observation(404) if key not in docs else Observation(200, (_view(docs, key),))
    if op.kind in ("history", "since"):
        if key not in docs or docs[key]["gone"]:
            return Observation(404)
        found: list[str] = []
        if op.kind == "history":
            ancestor = docs[key]["prev"]
            while ancestor is not None:
                found.append(ancestor)
                ancestor = docs[ancestor]["prev"]
        else:
            pending = list(docs[key]["next"])
            while pending:
                found.append(pending.pop(0))
                pending[:0] = docs[found[-1]]["next"]
        return Observation(200, tuple(_view(docs, k) for k in found))
    live = [k for k, doc in docs.items() if not doc["gone"]]
    if op.kind == "query":
        hits = [k for k in live if all(docs[k]["content"].get(f) == v for f, v in (op.filter or {}).items())]
    else:
        hits = [k for k in live if (op.text or "") in re.findall(r"\w+", docs[k]["content"]["body"]["value"])]
    return Observation(200, tuple(_view(docs, k) for k in hits))


@dataclass
class _Object:
    name: str
    writes: list[Operation] = field(default_factory=list)
    keys: list[str] = field(default_factory=list)  # every key made, in order (the model's truth)
    acked: list[tuple[int, str]] = field(default_factory=list)  # (completion, key) a client learnt
    effects: list[int | None] = field(default_factory=list)  # when each write took effect (None: never)
    released: bool = False
    retired: bool = False
    busy_until: int = -1


@dataclass
class Generated:
    """A linearizable history and, per object, its states (state j: after its first j writes)."""

    history: History
    states: dict[str, list[Docs]]
    observed_state: dict[int, int]  # id(read) → the state index its answer came from


@st.composite
def linearizable_histories(draw: st.DrawFn, max_steps: int = 40) -> Generated:
    """A history of up to ``max_steps`` operations over three objects and four clients."""
    objects = {name: _Object(name) for name in OBJECTS}
    client_free = [0] * 4
    reads: list[tuple[Operation, int]] = []  # (read, linearization point)
    counter = 0
    for step in range(draw(st.integers(1, max_steps))):
        point = 100 * (step + 1)
        free = [c for c in range(len(client_free)) if client_free[c] < point]
        if not free:
            continue
        client = draw(st.sampled_from(free))
        invoke = max(point - draw(st.integers(0, 250)), client_free[client] + 1)
        complete = point + draw(st.integers(0, 250))
        obj = objects[draw(st.sampled_from(OBJECTS))]
        writable = not obj.retired and obj.busy_until < point
        if writable and draw(st.booleans()):
            invoke = max(invoke, obj.busy_until + 1)
            head_live = bool(obj.keys) and not obj.released
            if not obj.keys:
                kind = "create"
            else:
                kinds = ["update", "patch"] + (["overwrite", "release", "delete"] if head_live else [])
                kind = draw(st.sampled_from(kinds))
            outcome: Outcome = draw(st.sampled_from(["ok"] * 8 + ["failed", "unknown"]))
            seq = len(obj.writes) + 1
            new = None
            if kind in ("create", "update", "patch"):
                counter += 1
                new = f"{obj.name}{counter}"
            head = obj.keys[-1] if obj.keys else None
            op = write(kind, seq, invoke, complete, key=head, new=new if outcome == "ok" else None,
                       outcome=outcome, obj=obj.name, client=client)  # fmt: skip
            effect: int | None = point
            if outcome != "ok":
                # "maybe applied": never, at its point, or (lost answers) after it completed
                effect = draw(st.sampled_from([None, point, complete + draw(st.integers(1, 300))]))
            if outcome != "ok" or kind == "delete":
                obj.retired = True
            obj.writes.append(op)
            obj.effects.append(effect)
            if new is not None:
                obj.keys.append(new)
                if outcome == "ok":
                    obj.acked.append((complete, new))
            if kind in ("update", "patch"):
                obj.released = False
            elif kind == "release":
                obj.released = True
            obj.busy_until = complete
        else:
            known = [key for done, key in obj.acked if done < invoke]
            kind = draw(
                st.sampled_from(
                    ["id", "history", "since", "query", "search"] if known else ["query", "search"]
                )
            )
            facts: dict[str, Any] = {}
            if kind in ("id", "history", "since"):
                facts["key"] = draw(st.sampled_from(known))
            elif kind == "query":
                facts["filter"] = draw(st.sampled_from([{"obj": obj.name}, {"tag": f"{obj.name}/even"},
                                                        {"tag": f"{obj.name}/odd"}]))  # fmt: skip
            else:
                word = WORDS[obj.name]
                facts["text"] = draw(st.sampled_from([word, word + "even", word + "odd"]))
            op = read(kind, invoke, complete, client=client, obj=obj.name, **facts)
            reads.append((op, point))
        client_free[client] = complete

    states: dict[str, list[Docs]] = {}
    for obj in objects.values():
        docs: Docs = {}
        states[obj.name] = [copy.deepcopy(docs)]
        made = iter(obj.keys)
        for op in obj.writes:
            _apply(docs, op, next(made) if op.kind in ("create", "update", "patch") else None)
            states[obj.name].append(copy.deepcopy(docs))
    answered: list[Operation] = []
    observed_state: dict[int, int] = {}
    for op, point in reads:
        obj = objects[op.obj]
        # Effects are in write order (a late one is always the last), so this counts a prefix.
        state = sum(1 for effect in obj.effects if effect is not None and effect <= point)
        seen = answer(states[op.obj][state], op)
        done = replace(op, observed=seen, status=seen.status)
        answered.append(done)
        observed_state[id(done)] = state
    writes = [op for obj in objects.values() for op in obj.writes]
    ordered = sorted([*writes, *answered], key=lambda op: op.invoke_ns)
    return Generated(History(tuple(ordered)), states, observed_state)
