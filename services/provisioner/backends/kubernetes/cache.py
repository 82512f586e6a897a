"""A list+watch cache of one resource kind, namespaced or (namespace None) cluster-scoped.

The kubernetes client is blocking, so each cache runs its watch in a thread
and hands every change to the event loop, where all cache state lives. It
lists, then watches from the list's resourceVersion; on 410 Gone it lists
again; on errors it reconnects with capped exponential backoff.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from collections.abc import Callable
from typing import Any, cast

from kubernetes import watch
from kubernetes.client.exceptions import ApiException

from services.provisioner.backends.kubernetes.objects import Obj, name_of

log = logging.getLogger(__name__)

Change = Callable[[str, Obj, Obj | None], None]  # event type, object, previous


class WatchCache:
    def __init__(
        self,
        *,
        kind: str,
        list_fn: Callable[..., Any],
        namespace: str | None,
        label_selector: str,
        loop: asyncio.AbstractEventLoop,
        on_change: Change,
        on_sync: Callable[[], None],
        store: dict[str, Obj] | None = None,
        watch_timeout: int = 60,
        heard: Callable[[], None] = lambda: None,
    ) -> None:
        self.kind = kind
        self.objects: dict[str, Obj] = {} if store is None else store
        self.synced = False
        self._list_fn = list_fn
        self._namespace = namespace
        self._selector = label_selector
        self._loop = loop
        self._on_change = on_change
        self._on_sync = on_sync
        self._watch_timeout = watch_timeout
        self._heard = heard  # anything from the API, bookmarks too (`health.ApiHealth`)
        self._deleted: set[str] = set()  # deleted by us, until the watch says so too
        self._stop = threading.Event()
        self._watch: watch.Watch | None = None
        self._thread = threading.Thread(target=self._run, name=f"watch-{kind}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._watch is not None:
            self._watch.stop()

    # loop thread

    def _replace(self, items: list[Obj]) -> None:
        self._deleted.clear()  # the list is the truth
        fresh = {name_of(item): item for item in items}
        for name, old in list(self.objects.items()):
            if name not in fresh:
                del self.objects[name]
                self._on_change("DELETED", old, old)
        for name, item in fresh.items():
            previous = self.objects.get(name)
            self.objects[name] = item
            self._on_change("MODIFIED" if previous else "ADDED", item, previous)
        self.synced = True
        self._on_sync()

    def _apply(self, kind: str, obj: Obj) -> None:
        name = name_of(obj)
        if name in self._deleted:  # a late event of something we deleted: already gone
            if kind == "DELETED":
                self._deleted.discard(name)
            return
        previous = self.objects.get(name)
        if kind == "DELETED":
            self.objects.pop(name, None)
        elif previous is not None and _version(previous) > _version(obj):
            return  # our own newer write is here already: the watch is catching up
        else:
            self.objects[name] = obj
        self._on_change(kind, obj, previous)

    def put(self, obj: Obj) -> None:
        """Our own write, seen before its watch event arrives (newer versions only)."""
        current = self.objects.get(name_of(obj))
        if current is None or _version(current) < _version(obj):
            self._apply("MODIFIED" if current else "ADDED", obj)

    def forget(self, name: str) -> None:
        """Our own delete, seen before its watch event: gone from the cache at once."""
        current = self.objects.get(name)
        if current is not None:
            self._apply("DELETED", current)
        self._deleted.add(name)

    def _unsynced(self) -> None:
        self.synced = False
        self._on_sync()

    # watch thread

    def _run(self) -> None:
        backoff = 0.2
        version: str | None = None
        while not self._stop.is_set():
            try:
                if version is None:
                    version = self._list()
                version = self._watch_from(version)
                backoff = 0.2
            except ApiException as exc:
                if exc.status == 410:  # our resourceVersion is too old: list again
                    version = None
                    continue
                self._failed(exc, backoff)
                version = None  # the cache is unsynced now: list again
                backoff = min(backoff * 2, 5.0)
            except Exception as exc:
                self._failed(exc, backoff)
                version = None
                backoff = min(backoff * 2, 5.0)

    def _failed(self, exc: Exception, backoff: float) -> None:
        """Log, mark the cache unsynced, and wait ``backoff`` seconds (less if stopped)."""
        if self._stop.is_set():
            return
        log.warning("watch_failed", extra={"kind": self.kind, "error": str(exc)[:200]})
        self._to_loop(self._unsynced)
        self._stop.wait(backoff)

    def _to_loop(self, fn: Callable[..., None], *args: Any) -> None:
        try:
            self._loop.call_soon_threadsafe(fn, *args)
        except RuntimeError:  # the loop has closed: we are shutting down
            self._stop.set()

    def _list(self) -> str:
        response = self._list_fn(
            *self._scope(),
            label_selector=self._selector,
            _preload_content=False,
            _request_timeout=10,
        )
        body = json.loads(response.data)
        self._heard()
        items = body.get("items") or []
        self._to_loop(self._replace, items)
        return body["metadata"]["resourceVersion"]

    def _scope(self) -> tuple[str, ...]:
        """The list function's positional arguments: the namespace, or none for the cluster."""
        return () if self._namespace is None else (self._namespace,)

    def _watch_from(self, version: str) -> str:
        self._watch = watch.Watch()
        for raw in self._watch.stream(
            self._list_fn,
            *self._scope(),
            label_selector=self._selector,
            resource_version=version,
            allow_watch_bookmarks=True,
            timeout_seconds=self._watch_timeout,
            _request_timeout=self._watch_timeout + 10,
            deserialize=False,
        ):
            if self._stop.is_set():
                break
            self._heard()
            event = cast(dict[str, Any], raw)
            kind = event["type"]
            obj = event["object"]
            version = obj["metadata"]["resourceVersion"]
            if kind != "BOOKMARK":
                self._to_loop(self._apply, kind, obj)
        return version


def _version(obj: Obj) -> int:
    """The resourceVersion as a number (etcd's revision), to order writes of one object."""
    return int(obj["metadata"]["resourceVersion"])
