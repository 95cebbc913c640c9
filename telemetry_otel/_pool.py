"""A thread pool of daemon threads, joined within a bound: a stuck call never keeps a process alive."""

from __future__ import annotations

import os
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, ParamSpec, TypeVar

__all__ = ["DaemonThreadPool"]

_P = ParamSpec("_P")
_T = TypeVar("_T")
_WorkItem = tuple[Future[Any], Callable[[], Any]]


class DaemonThreadPool(ThreadPoolExecutor):
    """A ``ThreadPoolExecutor`` whose workers are daemon threads, joined within a bound at shutdown.

    The standard pool joins its workers at interpreter exit, so one snapshot function stuck for
    ever would keep the whole process from exiting. Here a worker stuck in a call is a daemon thread:
    :meth:`shutdown` waits for it at most ``join_seconds`` and leaves it to finish on its own.
    Workers start on demand up to ``max_workers`` and are reused when idle, like the standard pool's.
    """

    def __init__(self, max_workers: int, thread_name_prefix: str) -> None:
        super().__init__(max_workers=max_workers, thread_name_prefix=thread_name_prefix)
        self._limit = max_workers
        self._prefix = thread_name_prefix
        self._items: queue.SimpleQueue[_WorkItem | None] = queue.SimpleQueue()
        self._idle = threading.Semaphore(0)
        self._pool_lock = threading.Lock()
        self._workers: list[threading.Thread] = []
        self._pid = os.getpid()
        self._closed = False

    @property
    def threads(self) -> list[threading.Thread]:
        """The worker threads started so far (alive or not)."""
        with self._pool_lock:
            return list(self._workers)

    def submit(self, fn: Callable[_P, _T], /, *args: _P.args, **kwargs: _P.kwargs) -> Future[_T]:
        """Run ``fn(*args, **kwargs)`` on a worker; RuntimeError after :meth:`shutdown`."""
        future: Future[_T] = Future()
        with self._pool_lock:
            if self._closed:
                raise RuntimeError("cannot schedule new futures after shutdown")
            self._forget_parent_locked()
            if not self._idle.acquire(blocking=False) and len(self._workers) < self._limit:
                # Started before the call is queued: a thread that cannot start (at interpreter exit
                # since Python 3.12) leaves nothing behind, and the caller hears of it.
                self._start_worker_locked()
            self._items.put((future, lambda: fn(*args, **kwargs)))
        return future

    def prestart(self, count: int) -> None:
        """Start up to ``count`` idle workers now, while threads may still be started (a final
        collection at interpreter exit must not need a new thread)."""
        with self._pool_lock:
            self._forget_parent_locked()
            for _ in range(min(count, self._limit - len(self._workers))):
                self._start_worker_locked()
                self._idle.release()

    def _start_worker_locked(self) -> None:
        worker = threading.Thread(target=self._work, name=f"{self._prefix}_{len(self._workers)}", daemon=True)
        worker.start()
        self._workers.append(worker)

    def reset_after_fork(self) -> None:
        """In a forked child: no worker of the parent exists, and its lock may have been held."""
        self._pool_lock = threading.Lock()
        self._pid = -1
        self._forget_parent_locked()

    def _forget_parent_locked(self) -> None:
        """In a forked child the parent's workers do not exist: start afresh."""
        if self._pid != os.getpid():
            self._pid = os.getpid()
            self._items = queue.SimpleQueue()
            self._idle = threading.Semaphore(0)
            self._workers = []

    def shutdown(
        self, wait: bool = True, *, cancel_futures: bool = False, join_seconds: float | None = None
    ) -> None:
        """Stop the workers once their current call returns; a second call does nothing more.

        ``cancel_futures`` cancels the calls not started yet. With ``wait``, waits for the workers
        at most ``join_seconds`` in all (None: until they end).
        """
        with self._pool_lock:
            first = not self._closed
            self._closed = True
            workers = list(self._workers)
        if first:
            if cancel_futures:
                while True:
                    try:
                        item = self._items.get_nowait()
                    except queue.Empty:
                        break
                    if item is not None:
                        item[0].cancel()
            for _ in workers:
                self._items.put(None)
        if not wait:
            return
        deadline = None if join_seconds is None else time.monotonic() + join_seconds
        for worker in workers:
            worker.join(None if deadline is None else max(0.0, deadline - time.monotonic()))

    def _work(self) -> None:
        while True:
            item = self._items.get()
            if item is None:
                return
            future, call = item
            del item
            if not future.set_running_or_notify_cancel():
                self._idle.release()
                continue
            try:
                result = call()
            except BaseException as exc:  # handed to the caller through the future
                # Idle before the caller hears of it: its next submit reuses this thread.
                self._idle.release()
                future.set_exception(exc)
            else:
                self._idle.release()
                future.set_result(result)
                del result
            del future, call
