"""``docvlm watch``: process files as they land in a pipeline's source folder.

A file is picked up once it is completely written: its size and mtime have not changed for
``watch.settle_s`` seconds. Files that become ready close together are batched (a burst
closes after ``watch.batch_s`` quiet seconds, ``watch.max_batch`` files or ``watch.max_wait_s``)
and processed as one pipeline run over just those paths, so each batch is one Prefect flow run
with one task per document. The ledger makes processing exactly-once by content: a file seen
twice, copied under another name, or left from before a restart is not processed again.

Events come from ``watchdog`` (inotify on Linux); a periodic stat-only rescan
(``watch.rescan_s``) catches anything the event queue dropped, and a full run at start-up
catches files that arrived while the watcher was down.

Writers should ideally write to a temporary name and rename (names matching ``watch.ignore``,
e.g. ``*.tmp``, are never picked up); a writer that pauses longer than ``settle_s`` in the
middle of a file gets the partial file processed (and parked as unreadable).
"""

from __future__ import annotations

import fnmatch
import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from docvlm.ops.definition import PipelineConfig

logger = logging.getLogger(__name__)

Signature = tuple[int, int]  # (size, mtime_ns)
ProcessBatch = Callable[[list[str] | None], Any]


@dataclass
class _Pending:
    sig: Signature | None
    stable_since: float


class FolderWatcher:
    """Watch a pipeline's source folders and process completely written files in batches.

    Args:
        config: the pipeline (``watch`` section for the timings).
        process: called with a list of paths (or None = every source, at start-up), e.g.
            the Prefect flow run of :func:`docvlm.flows.pipeline.run_pipeline`; defaults to
            the plain-Python :func:`docvlm.ops.runner.run_local`.
        catch_up: run once over the files already there before watching.
    """

    def __init__(
        self,
        config: PipelineConfig,
        process: ProcessBatch | None = None,
        catch_up: bool = True,
    ) -> None:
        self.config = config
        self.catch_up = catch_up
        self.rescan_s = config.watch.rescan_s
        self._process = process or self._run_pipeline
        self._lock = threading.Lock()
        self._pending: dict[str, _Pending] = {}
        self._seen: dict[str, Signature] = {}  # processed (or queued) files and their signature
        self._ready: list[str] = []
        self._first_ready = 0.0
        self._last_ready = 0.0
        self.batches = 0
        self.files = 0
        self.ready = threading.Event()  # set once watching (after the catch-up run)

    # -- events ----------------------------------------------------------------------------

    def notice(self, path: str) -> None:
        """A file was created, modified or moved in: (re)start its settle clock."""
        name = os.path.basename(path)
        if any(fnmatch.fnmatch(name, pat) for pat in self.config.watch.ignore):
            return
        with self._lock:
            if path not in self._pending:
                self._pending[path] = _Pending(None, time.monotonic())

    def _handler(self) -> Any:
        from watchdog.events import FileSystemEvent, FileSystemEventHandler

        watcher = self

        class Handler(FileSystemEventHandler):
            def on_any_event(self, event: FileSystemEvent) -> None:
                if event.is_directory or event.event_type in (
                    "deleted",
                    "opened",
                    "closed_no_write",
                ):
                    return
                path = getattr(event, "dest_path", "") or event.src_path
                watcher.notice(os.fsdecode(path))

        return Handler()

    def rescan(self) -> None:
        """Notice every file whose size or mtime differs from what was last processed."""
        for root in self.config.watch_roots():
            for dirpath, dirs, files in os.walk(root):
                dirs[:] = [d for d in dirs if not d.startswith(".")]
                for name in files:
                    path = os.path.join(dirpath, name)
                    sig = _signature(path)
                    if sig is not None and self._seen.get(path) != sig:
                        self.notice(path)

    # -- settling and batching -------------------------------------------------------------

    def tick(self, now: float | None = None) -> list[str] | None:
        """Advance the settle clocks; return a batch when one should be processed now."""
        w = self.config.watch
        now = time.monotonic() if now is None else now
        with self._lock:
            for path, state in list(self._pending.items()):
                sig = _signature(path)
                if sig is None:  # gone (moved away, deleted)
                    del self._pending[path]
                elif sig != state.sig:
                    state.sig, state.stable_since = sig, now
                elif now - state.stable_since >= w.settle_s:
                    del self._pending[path]
                    if self._seen.get(path) == sig:
                        continue  # an event without a change (touch, re-close)
                    self._seen[path] = sig
                    if not self.config.matches_source(path):
                        continue
                    if not self._ready:
                        self._first_ready = now
                    self._ready.append(path)
                    self._last_ready = now
            if not self._ready:
                return None
            quiet = now - self._last_ready >= w.batch_s
            full = len(self._ready) >= w.max_batch
            overdue = now - self._first_ready >= w.max_wait_s
            if not (quiet or full or overdue):
                return None
            batch, self._ready = self._ready[: w.max_batch], self._ready[w.max_batch :]
            if self._ready:
                self._first_ready = self._last_ready = now
            return batch

    def _run_pipeline(self, paths: list[str] | None) -> Any:
        from docvlm.ops.runner import run_local

        return run_local(self.config, inputs=paths)

    def _process_batch(self, paths: list[str] | None) -> None:
        from docvlm.sources import snapshots

        started = time.monotonic()
        try:
            # each file is read once: hashed and copied together, then parsed from the copy,
            # so a half-written file is not read later under the hash of an earlier state
            with snapshots():
                self._process(paths)
        except Exception:
            logger.exception("event=watch_batch_failed pipeline=%s files=%s", self.config.name,
                             len(paths) if paths is not None else "all")  # fmt: skip
            if paths:  # forget them, so the next rescan or event queues them again
                with self._lock:
                    for p in paths:
                        self._seen.pop(p, None)
            return
        self.batches += 1
        self.files += len(paths) if paths is not None else 0
        logger.info(
            "event=watch_batch pipeline=%s files=%s seconds=%.1f", self.config.name,
            len(paths) if paths is not None else "all", time.monotonic() - started,
        )  # fmt: skip

    # -- main loop ---------------------------------------------------------------------------

    def run(
        self,
        stop: threading.Event | None = None,
        until: Callable[[], bool] | None = None,
        poll: bool = False,
    ) -> None:
        """Watch until ``stop`` is set, ``until()`` is true, or Ctrl-C.

        Args:
            stop: an event another thread sets to end the watch.
            until: checked after each tick; True ends the watch (tests, one-shot use).
            poll: use watchdog's polling observer (network file systems without inotify).
        """
        if poll:
            from watchdog.observers.polling import PollingObserver as Observer
        else:
            from watchdog.observers import Observer

        stop = stop or threading.Event()
        roots = [r for r in self.config.watch_roots()]
        for root in roots:
            root.mkdir(parents=True, exist_ok=True)
        observer = Observer()
        handler = self._handler()
        for root in roots:
            observer.schedule(handler, str(root), recursive=True)
        observer.start()
        logger.info(
            "event=watch_start pipeline=%s roots=%s settle_s=%s batch_s=%s", self.config.name,
            ",".join(map(str, roots)), self.config.watch.settle_s, self.config.watch.batch_s,
        )  # fmt: skip
        try:
            # Files already there (or written while nobody watched): their signatures are
            # recorded first, so the catch-up run covers them and events don't requeue them.
            settled = self.rescan_record()
            if self.catch_up:
                with self._lock:
                    busy = bool(self._pending)
                if not busy:
                    self._process_batch(None)
                elif settled:
                    self._process_batch(settled)
            last_rescan = time.monotonic()
            self.ready.set()
            while not stop.is_set():
                batch = self.tick()
                if batch:
                    self._process_batch(batch)
                if until is not None and until():
                    break
                if self.rescan_s and time.monotonic() - last_rescan >= self.rescan_s:
                    self.rescan()
                    last_rescan = time.monotonic()
                stop.wait(self.config.watch.poll_s)
        except KeyboardInterrupt:
            logger.info("event=watch_interrupted pipeline=%s", self.config.name)
        finally:
            observer.stop()
            observer.join(timeout=10)

    def rescan_record(self) -> list[str]:
        """Record the signature of every settled file present now and return them (the
        catch-up run handles them); files still being written are left to the settle clock."""
        now = time.time_ns()
        settled: list[str] = []
        settle_ns = int(self.config.watch.settle_s * 1e9)
        for root in self.config.watch_roots():
            for dirpath, dirs, files in os.walk(root):
                dirs[:] = [d for d in dirs if not d.startswith(".")]
                for name in files:
                    path = os.path.join(dirpath, name)
                    sig = _signature(path)
                    if sig is None:
                        continue
                    if self.catch_up and now - sig[1] >= settle_ns:
                        self._seen[path] = sig
                        if self.config.matches_source(path):
                            settled.append(path)
                    else:
                        self.notice(path)
        return settled


def _signature(path: str) -> Signature | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    if not os.path.isfile(path):
        return None
    return (st.st_size, st.st_mtime_ns)


__all__: Sequence[str] = ["FolderWatcher"]
