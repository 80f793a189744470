"""Field ownership as data: ``metadata.managedFields`` entries, their ``fieldsV1`` sets, and rewriting them.

A ``fieldsV1`` tree is a set of field paths: each key is a path element (``f:<name>`` a map key or struct field,
``k:<json>`` a list item by its key fields, ``v:<json>`` a set member, ``i:<n>`` a list index); an empty tree
``{}`` means its own path is in the set, and ``"."`` inside a tree that has children says the same of that
node. Here a set is a Python ``set`` of paths (tuples of path elements); :func:`members` and :func:`tree`
convert. :func:`resolve` finds a path in an object (``lenient`` for an applied configuration that leaves out
list-key fields the server defaults, such as a port's ``protocol``), :func:`pointer` names it as an RFC 6901
pointer, :func:`removals` turns paths into ``remove`` operations of an RFC 6902 patch.

:func:`survey` and :func:`rewrite` decide how an ``Apply`` manager takes ownership, without any I/O:

- **Take-over** (client-go's ``csaupgrade.UpgradeManagedFields``, which moves what a client-side manager owned
  with ``Update`` into a server-side ``Apply`` manager's entry, so that later applies remove the fields the
  applier no longer sends): the ``Update`` entries of the named managers (main resource only) are removed, and
  what they owned is split three ways. Paths the applier's configuration sends go to the applier's entry;
  paths whose removal changes nothing (server defaults, which ``Update`` managers own since they sent the
  whole object) become unowned — csaupgrade hands them to the applier too, so the next apply removes and the
  server re-adds them: one more write for nothing; and paths whose removal does change the object (content
  the applier no longer wants) go to the applier's entry, so its next apply removes them. Which is which is
  learnt from a dry-run of removing them (:func:`classify`). Paths under ``keep`` (top-level fields another
  writer owns) stay where they are.
- **Drift**: paths present in the object, owned by any other manager (main resource), in ``scope`` (top-level
  fields, metadata never), that the applier neither owns nor sends; and (``stolen``) paths the applier sends
  that another manager changed, taking them from the applier. Those whose removal changes the object are
  moved into the applier's entry too (its next apply removes them); the others (e.g. a default another manager
  applied explicitly) are left alone.

:func:`rewrite` returns the new managedFields; a caller writes them with a JSON patch guarded by the object's
resourceVersion (:func:`migration_patch`), as csaupgrade's patch form does.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from druid.runtime.objects import Obj

Path = tuple[str, ...]
APPLY, UPDATE = "Apply", "Update"
_MISSING = object()


# ---------------------------------------------------------------------------------------------- sets


def members(fields: Mapping[str, Any] | None, prefix: Path = ()) -> set[Path]:
    """The paths a ``fieldsV1`` tree holds."""
    out: set[Path] = set()
    for key, sub in (fields or {}).items():
        if key == ".":
            out.add(prefix)
        elif not sub:
            out.add((*prefix, key))
        else:
            out |= members(sub, (*prefix, key))
    return out


def tree(paths: Iterable[Path]) -> dict[str, Any]:
    """The ``fieldsV1`` tree of a set of paths (inverse of :func:`members`)."""
    root: dict[str, Any] = {}
    own: set[Path] = set()
    for path in paths:
        node = root
        for element in path:
            node = node.setdefault(element, {})
        own.add(path)

    def mark(node: dict[str, Any], prefix: Path) -> None:
        for key, sub in node.items():
            if key != "." and sub:
                mark(sub, (*prefix, key))
                if (*prefix, key) in own:
                    sub["."] = {}

    mark(root, ())
    return root


def under(path: Path, prefix: Path) -> bool:
    return path[: len(prefix)] == prefix


# ---------------------------------------------------------------------------------------------- paths in objects


def _item_index(items: list[Any], element: str, lenient: bool) -> int | None:
    kind, raw = element[:2], element[2:]
    if kind == "i:":
        i = int(raw)
        return i if 0 <= i < len(items) else None
    want = json.loads(raw)
    for i, item in enumerate(items):
        if kind == "v:" and item == want:
            return i
        if kind == "k:" and isinstance(item, dict) and isinstance(want, dict):
            if all((lenient and k not in item) or item.get(k) == v for k, v in want.items()):
                return i
    return None


def _step(node: Any, element: str, lenient: bool) -> tuple[Any, str | int] | None:
    if element.startswith("f:"):
        name = element[2:]
        if isinstance(node, dict) and name in node:
            return node[name], name
        return None
    if isinstance(node, list):
        i = _item_index(node, element, lenient)
        if i is not None:
            return node[i], i
    return None


def resolve(obj: Any, path: Path, *, lenient: bool = False) -> Any:
    """The value at ``path`` in ``obj``, or :data:`_MISSING` (see :func:`present`)."""
    node = obj
    for element in path:
        step = _step(node, element, lenient)
        if step is None:
            return _MISSING
        node = step[0]
    return node


def present(obj: Any, path: Path, *, lenient: bool = False) -> bool:
    return resolve(obj, path, lenient=lenient) is not _MISSING


def pointer(obj: Any, path: Path) -> list[str | int] | None:
    """``path`` as the keys and indexes that reach it in ``obj`` (None when absent)."""
    node, out = obj, []
    for element in path:
        step = _step(node, element, False)
        if step is None:
            return None
        node, key = step
        out.append(key)
    return out


def pointer_text(keys: list[str | int]) -> str:
    return "".join("/" + str(k).replace("~", "~0").replace("/", "~1") for k in keys)


def readable(path: Path) -> str:
    """A path for people: ``spec.template.spec.containers[name=etcd].command``."""
    out = ""
    for element in path:
        kind, raw = element[:2], element[2:]
        if kind == "f:":
            out += ("." if out else "") + raw
        elif kind == "k:":
            keys = json.loads(raw)
            out += "[" + ",".join(f"{k}={v}" for k, v in keys.items()) + "]"
        else:
            out += f"[{raw}]"
    return out


def removals(obj: Obj, paths: Iterable[Path]) -> list[dict[str, Any]]:
    """RFC 6902 ``remove`` operations for ``paths`` present in ``obj``, the outermost only, in an order that keeps
    list indexes valid (later items first)."""
    found = sorted({tuple(p) for p in (pointer(obj, path) for path in paths) if p}, key=_sort_key, reverse=True)
    outer = [p for p in found if not any(q != p and p[: len(q)] == q for q in found)]
    return [{"op": "remove", "path": pointer_text(list(p))} for p in outer]


def _sort_key(keys: tuple[str | int, ...]) -> tuple[tuple[int, str, int], ...]:
    return tuple((1, "", k) if isinstance(k, int) else (0, k, 0) for k in keys)


# ---------------------------------------------------------------------------------------------- entries


def main_entries(managed: Iterable[Mapping[str, Any]]) -> Iterator[tuple[int, Mapping[str, Any]]]:
    """(index, entry) of the entries about the main resource (no subresource)."""
    for i, entry in enumerate(managed):
        if isinstance(entry, Mapping) and not entry.get("subresource"):
            yield i, entry


def is_apply_of(entry: Mapping[str, Any], manager: str) -> bool:
    return entry.get("manager") == manager and entry.get("operation") == APPLY and not entry.get("subresource")


def entry_members(entry: Mapping[str, Any]) -> set[Path]:
    fields = entry.get("fieldsV1")
    return members(fields if isinstance(fields, Mapping) else None)


@dataclass
class Survey:
    """What an applier of ``desired`` would take over or find drifted on a live object (see the module docstring).

    ``takeover``: indexes of the take-over managers' Update entries; ``sent``: paths owned by someone that the
    applied configuration sends; ``candidates``: path → managers, paths to be tried (by a dry-run removal);
    ``stolen``: path → managers, paths the applier sends and owned before another manager changed them (an
    Update takes ownership only of what it changes); its next apply sets them back.
    """

    manager: str
    takeover: list[int] = field(default_factory=list)
    sent: set[Path] = field(default_factory=set)
    candidates: dict[Path, set[str]] = field(default_factory=dict)
    nodes: set[Path] = field(default_factory=set)  # candidates that are maps or items with owned children
    stolen: dict[Path, set[str]] = field(default_factory=dict)  # sent, owned by the applier no more: changed

    @property
    def empty(self) -> bool:
        return not self.takeover and not self.candidates


def survey(
    live: Obj,
    desired: Obj,
    manager: str,
    *,
    takeover: Collection[str] = (),
    keep: Collection[str] = (),
    scope: Callable[[str], bool] = lambda top: top not in ("apiVersion", "kind", "metadata", "status"),
) -> Survey:
    """Which of ``live``'s owned paths ``manager`` (applying ``desired``) should take over or try to revert.

    ``takeover``: managers whose ``Update`` entries are migrated (all of their paths but those under ``keep``);
    ``keep``: top-level fields other writers own (never taken, never reverted); ``scope``: the top-level fields
    in which other managers' paths count as drift.
    """
    managed = (live.get("metadata") or {}).get("managedFields") or []
    out = Survey(manager)
    own: set[Path] = set()
    others: list[tuple[int, Mapping[str, Any], set[Path]]] = []
    for i, entry in main_entries(managed):
        if is_apply_of(entry, manager):
            own |= entry_members(entry)
        else:
            others.append((i, entry, entry_members(entry)))
    for i, entry, paths in others:
        taking = entry.get("operation") == UPDATE and entry.get("manager") in takeover
        taking = taking and any(p and p[0][2:] not in keep for p in paths)  # what is left besides kept fields
        if taking:
            out.takeover.append(i)
        for path in paths:
            top = path[0][2:] if path else ""
            if not path or top in keep:
                continue
            if present(desired, path, lenient=True):
                out.sent.add(path)
                if own and not taking and path not in own and _leaf(path, paths) and not _covered(path, own):
                    out.stolen.setdefault(path, set()).add(str(entry.get("manager", "")))
            elif path in own or not present(live, path):
                continue
            elif taking or scope(top):
                out.candidates.setdefault(path, set()).add(str(entry.get("manager", "")))
                if any(len(p) > len(path) and under(p, path) for p in paths):
                    out.nodes.add(path)
    return out


def _leaf(path: Path, paths: set[Path]) -> bool:
    """No other path of the set lies below ``path`` (it is a value, not a map or item with owned children)."""
    return not any(len(p) > len(path) and under(p, path) for p in paths)


def _covered(path: Path, own: set[Path]) -> bool:
    """``own`` holds ``path``, something below it (it is shared structure), or an atomic value above it."""
    return any(under(p, path) or (under(path, p) and _leaf(p, own)) for p in own)


def classify(s: Survey, live: Obj, dry_run: Obj) -> tuple[dict[Path, set[str]], set[Path]]:
    """Split the candidates by the object a dry-run removal of them produced: (changed → managers, unchanged).

    A leaf is unchanged when the server put back the same value; a map or item whose children are owned too
    when it exists again (its children are judged one by one)."""
    changed: dict[Path, set[str]] = {}
    same: set[Path] = set()
    for path, who in s.candidates.items():
        after = resolve(dry_run, path)
        if after is not _MISSING and (path in s.nodes or after == resolve(live, path)):
            same.add(path)
        else:
            changed[path] = who
    return changed, same


def rewrite(
    managed: list[dict[str, Any]],
    s: Survey,
    moved: Collection[Path],
    *,
    api_version: str,
    now: str,
    keep: Collection[str] = (),
) -> list[dict[str, Any]] | None:
    """The managedFields after ``s.manager`` took over ``s.takeover`` and the drifted paths ``moved``; None if the
    same. The applier's entry gains the paths it sends that take-over managers owned, and ``moved``; take-over
    entries keep only their paths under ``keep`` (else go); other entries lose ``moved``."""
    if not s.takeover and not moved:
        return None
    moved = set(moved)
    gained = set(moved)
    out: list[dict[str, Any]] = []
    target: dict[str, Any] | None = None
    for i, entry in enumerate(managed):
        if entry.get("subresource"):
            out.append(entry)
            continue
        paths = entry_members(entry)
        if is_apply_of(entry, s.manager):
            target = dict(entry)
            out.append(target)
            continue
        if i in s.takeover:
            gained |= {p for p in paths if p in s.sent}
            rest = {p for p in paths if p and p[0][2:] in keep}
        else:
            rest = paths - moved
        if rest == paths:
            out.append(entry)
        elif rest:
            out.append({**entry, "fieldsV1": tree(rest)})
    if target is None:  # like csaupgrade: a new Apply entry, first (the most recent) in the list
        target = {"manager": s.manager, "operation": APPLY, "apiVersion": api_version, "time": now}
        target["fieldsType"] = "FieldsV1"
        out.insert(0, target)
    target["fieldsV1"] = tree(entry_members(target) | gained)
    return None if out == managed else out


def migration_patch(resource_version: str, managed: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The JSON patch that replaces managedFields only if the object is still at ``resource_version``."""
    return [
        {"op": "test", "path": "/metadata/resourceVersion", "value": resource_version},
        {"op": "replace", "path": "/metadata/managedFields", "value": managed},
    ]
