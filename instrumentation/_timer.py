"""``InstrumentedService.request()``: time a block or a function as one request.

One small object per request, no generator: entering reads the clock, leaving calls the service's
pre-bound ``record_request`` once. An ``Exception`` counts as an error and propagates; any other
``BaseException`` (cancellation, ``KeyboardInterrupt``, ``SystemExit``) means the request did not
complete, so nothing is recorded. The same object decorates sync and async functions; each call of
the decorated function is one request.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Awaitable, Callable
from time import perf_counter
from types import TracebackType
from typing import Any, ParamSpec, TypeVar, cast, overload

__all__ = ["RequestTimer"]

_P = ParamSpec("_P")
_R = TypeVar("_R")

#: ``record_request(seconds, error)``: the service's fast path.
Recorder = Callable[[float, bool], None]


class _Done:
    """An awaitable that completes at once with ``None``, without suspending."""

    __slots__ = ()
    # Not a function, so not bound: ``await`` calls it with no argument and gets an empty iterator,
    # all in C.
    __await__ = functools.partial(iter, ())


_DONE: Awaitable[None] = cast(Awaitable[None], _Done())


class RequestTimer:
    """Times one request: ``with``, ``async with``, or a decorator of sync and async functions."""

    __slots__ = ("_record", "_started")

    def __init__(self, record: Recorder) -> None:
        self._record = record

    def __enter__(self) -> None:
        self._started = perf_counter()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if kind is None:
            self._record(perf_counter() - self._started, False)
        elif issubclass(kind, Exception):
            self._record(perf_counter() - self._started, True)
        # Any other BaseException (cancellation, interrupt): the request did not complete.

    # Plain methods returning an awaitable that is already done: ``async with`` awaits their result,
    # and no coroutine object is made per request.
    def __aenter__(self) -> Awaitable[None]:
        self._started = perf_counter()
        return _DONE

    def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> Awaitable[None]:
        if kind is None:
            self._record(perf_counter() - self._started, False)
        elif issubclass(kind, Exception):
            self._record(perf_counter() - self._started, True)
        return _DONE

    @overload
    def __call__(self, function: Callable[_P, Awaitable[_R]]) -> Callable[_P, Awaitable[_R]]: ...

    @overload
    def __call__(self, function: Callable[_P, _R]) -> Callable[_P, _R]: ...

    def __call__(self, function: Callable[_P, Any]) -> Callable[_P, Any]:
        """Decorate ``function``: every call of it is one request (coroutine functions awaited)."""
        record = self._record
        if inspect.iscoroutinefunction(function):
            coroutine_function = cast(Callable[_P, Awaitable[Any]], function)

            @functools.wraps(function)
            async def timed_coroutine(*args: _P.args, **kwargs: _P.kwargs) -> Any:
                started = perf_counter()
                try:
                    result = await coroutine_function(*args, **kwargs)
                except Exception:
                    record(perf_counter() - started, True)
                    raise
                record(perf_counter() - started, False)
                return result

            return timed_coroutine

        @functools.wraps(function)
        def timed(*args: _P.args, **kwargs: _P.kwargs) -> Any:
            started = perf_counter()
            try:
                result = function(*args, **kwargs)
            except Exception:
                record(perf_counter() - started, True)
                raise
            record(perf_counter() - started, False)
            return result

        return timed
