"""Folders watched for changes (`mmsearch watch`): which paths to look at again.

The kernel's inotify events, through watchfiles (the Rust `notify` watcher uvicorn's reload
uses), arrive in batches once the disk has been quiet for `debounce_ms`; a batch is reduced
to the set of paths it touched, and the ingest pipeline (run with prune) decides what each
one means now: a file still there is ingested (skipped when unchanged), one that is gone,
or a folder that is gone, takes its records with it. So a rename, an editor's
write-to-temp-then-move, or a burst of copies all end in the state on disk, whatever the
order of the events. Hidden entries are left out, as the folder walk leaves them out.

The watcher runs in its own thread from the moment the context is entered, so changes made
while the caller is still syncing the folders are queued, not lost.
"""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import TracebackType

#: quiet time before a batch of changes is handed over, milliseconds (watchfiles' default)
DEBOUNCE_MS = 1600
#: how often the watcher thread and the consumer look at their stop signals, milliseconds
POLL_MS = 200


class FolderWatcher:
    """`with FolderWatcher(folders) as watcher: for paths in watcher.batches(stop): ...`"""

    def __init__(
        self, folders: Sequence[Path], *, recursive: bool = True, debounce_ms: int = DEBOUNCE_MS
    ) -> None:
        self.roots = [Path(os.path.abspath(folder)) for folder in folders]
        missing = [str(root) for root in self.roots if not root.is_dir()]
        if missing:
            raise NotADirectoryError(f"not a folder to watch: {missing[0]}")
        self.recursive = recursive
        self.debounce_ms = debounce_ms
        self._queue: queue.Queue[list[Path]] = queue.Queue()
        self._watching = threading.Event()
        self._closed = threading.Event()
        self._failure: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="mmsearch-watch", daemon=True)

    def __enter__(self) -> FolderWatcher:
        self._thread.start()
        self._watching.wait()
        if self._failure is not None:
            raise self._failure
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self._closed.set()
        self._thread.join()

    def batches(self, stop: threading.Event | None = None) -> Iterator[list[Path]]:
        """Each batch of changes as the sorted absolute paths it touched, until `stop` is
        set; an error of the watcher thread is raised here."""
        while not (stop is not None and stop.is_set()):
            try:
                yield self._queue.get(timeout=POLL_MS / 1000)
            except queue.Empty:
                if self._failure is not None:
                    raise self._failure from None

    def _run(self) -> None:
        import watchfiles

        try:
            for batch in watchfiles.watch(
                *self.roots,
                watch_filter=watchfiles.DefaultFilter(),
                debounce=self.debounce_ms,
                recursive=self.recursive,
                stop_event=self._closed,
                rust_timeout=POLL_MS,
                yield_on_timeout=True,  # the first (empty) yield says the watcher is up
                raise_interrupt=False,
            ):
                self._watching.set()
                wanted = sorted(p for p in {Path(path) for _, path in batch} if self._visible(p))
                if wanted:
                    self._queue.put(wanted)
        except BaseException as exc:  # handed to the consumer, who decides
            self._failure = exc
        finally:
            self._watching.set()

    def _visible(self, path: Path) -> bool:
        """Inside a root (directly, unless recursive), with no hidden part below it."""
        for root in self.roots:
            if path.is_relative_to(root) and path != root:
                parts = path.relative_to(root).parts
                shallow = self.recursive or len(parts) == 1
                return shallow and not any(part.startswith(".") for part in parts)
        return False
