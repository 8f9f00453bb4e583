"""A spawned worker pool with a bounded number of tasks in flight and callbacks in the parent."""

from __future__ import annotations

import multiprocessing
import sys
from collections import deque
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from benchmarks.mwbias.worker import init_worker

__all__ = ["Pool"]


class Pool:
    """A spawned worker pool with a bounded number of tasks in flight; a worker that dies (e.g.
    out of memory) breaks the pool: it is rebuilt and the interrupted tasks run once more."""

    def __init__(self, jobs: int) -> None:
        self.jobs = jobs
        self.context = multiprocessing.get_context("spawn")
        self.executor = self._new()
        self.queue: deque[tuple[Callable[[dict[str, Any]], Any], dict[str, Any], Callable]] = (
            deque()
        )
        self.pending: dict[Future, tuple[Callable, dict[str, Any], Callable]] = {}
        self.retried: set[int] = set()

    def _new(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(
            max_workers=self.jobs, mp_context=self.context, initializer=init_worker
        )

    def submit(
        self,
        fn: Callable[[dict[str, Any]], Any],
        task: dict[str, Any],
        done: Callable[[dict[str, Any], Any, BaseException | None], None],
        first: bool = False,
    ) -> None:
        """Queue ``fn(task)`` (at the front with ``first``); ``done(task, result, error)`` is
        called in the parent."""
        if first:
            self.queue.appendleft((fn, task, done))
        else:
            self.queue.append((fn, task, done))

    def run(self) -> None:
        """Run until every queued task (and every task queued by a callback) is done."""
        while self.queue or self.pending:
            while self.queue and len(self.pending) < self.jobs + 1:
                fn, task, done = self.queue.popleft()
                self.pending[self.executor.submit(fn, task)] = (fn, task, done)
            finished, _ = wait(self.pending, return_when=FIRST_COMPLETED)
            broken = False
            for future in finished:
                fn, task, done = self.pending.pop(future)
                try:
                    result = future.result()
                except BrokenProcessPool:
                    broken = True
                    self._retry_or_fail(fn, task, done)
                except Exception as err:  # noqa: BLE001 - handed to the callback
                    done(task, None, err)
                else:
                    done(task, result, None)
            if broken:
                for future, (fn, task, done) in list(self.pending.items()):
                    future.cancel()
                    self._retry_or_fail(fn, task, done)
                self.pending.clear()
                self.executor.shutdown(wait=False, cancel_futures=True)
                print("  a worker died: pool restarted", file=sys.stderr, flush=True)
                self.executor = self._new()

    def _retry_or_fail(self, fn: Callable, task: dict[str, Any], done: Callable) -> None:
        key = id(task)
        if key in self.retried:
            done(task, None, RuntimeError("worker process died (twice)"))
        else:
            self.retried.add(key)
            self.queue.appendleft((fn, task, done))

    def shutdown(self, wait: bool = True) -> None:
        """Wait for the workers, or (``wait=False``, on an interrupt) stop them now."""
        if not wait:  # ProcessPoolExecutor has no public terminate before Python 3.14
            for proc in list((getattr(self.executor, "_processes", None) or {}).values()):
                proc.terminate()
        self.executor.shutdown(wait=wait, cancel_futures=True)
