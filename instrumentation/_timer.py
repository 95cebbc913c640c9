"""``InstrumentedService.request()``: time a block or a function as one request.

One small object per request, no generator: entering reads the clock, leaving calls the service's
pre-bound ``record_request`` once. An ``Exception`` counts as an error and propagates; any other
``BaseException`` (cancellation, ``KeyboardInterrupt``, ``SystemExit``) means the request did not
complete, so nothing is recorded. The same object decorates sync and async functions; each call of
the decorated function is one request.

Each service has its own subclass of :class:`RequestTimer` (:func:`timer_class`), whose
``__exit__`` and ``__aexit__`` hold the service's recorder as a closure variable, and
``service.request`` *is* that class: making a timer is a C-level type call that runs no Python
``__init__``. One object per request is what lets threads and tasks time concurrent requests.
"""

from __future__ import annotations

import functools
import inspect
import types
from collections.abc import Awaitable, Callable, Generator, Iterator
from time import perf_counter
from types import TracebackType
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar, cast, overload

__all__ = ["RequestTimer", "timer_class"]

_P = ParamSpec("_P")
_R = TypeVar("_R")

#: ``record_request(seconds, error)``: the service's fast path.
Recorder = Callable[[float, bool], None]


@types.coroutine
def _finished() -> Generator[None, None, None]:
    return
    yield  # a generator, run to its end below


#: An awaitable that completes at once with ``None``, without suspending: a generator marked as an
#: iterable coroutine and already finished. ``await`` takes such a generator as it is and resumes
#: it, and a finished generator returns ``None`` at once: all in C, nothing allocated, nothing
#: looked up. It never runs again, so tasks and threads can share it.
_DONE: Awaitable[None] = _finished()
for _ in cast(Iterator[None], _DONE):  # runs to its end at once: it never yields
    pass


_NOT_BOUND = "a RequestTimer is made by InstrumentedService.request(), not constructed directly"


class RequestTimer:
    """Times one request: ``with``, ``async with``, or a decorator of sync and async functions.

    Made by ``service.request()``: each service's timers are instances of its own subclass, bound to
    its ``record_request``.
    """

    __slots__ = ("_started",)

    @staticmethod
    def _record(seconds: float, error: bool) -> None:
        """The service's ``record_request(seconds, error)``: each service's subclass sets it."""
        raise TypeError(_NOT_BOUND)

    def __enter__(self) -> None:
        self._started = perf_counter()

    # Plain methods returning an awaitable that is already done: ``async with`` awaits their result,
    # and no coroutine object is made per request.
    def __aenter__(self) -> Awaitable[None]:
        self._started = perf_counter()
        return _DONE

    if TYPE_CHECKING:  # each service's subclass defines them, with its recorder as a closure variable

        def __exit__(
            self,
            kind: type[BaseException] | None,
            error: BaseException | None,
            traceback: TracebackType | None,
        ) -> None: ...

        def __aexit__(
            self,
            kind: type[BaseException] | None,
            error: BaseException | None,
            traceback: TracebackType | None,
        ) -> Awaitable[None]: ...

    @overload
    def __call__(self, function: Callable[_P, Awaitable[_R]]) -> Callable[_P, Awaitable[_R]]: ...

    @overload
    def __call__(self, function: Callable[_P, _R]) -> Callable[_P, _R]: ...

    def __call__(self, function: Callable[_P, Any]) -> Callable[_P, Any]:
        """Decorate ``function``: every call of it is one request (coroutine functions awaited)."""
        if type(self) is RequestTimer:
            raise TypeError(_NOT_BOUND)
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


def timer_class(record: Recorder) -> type[RequestTimer]:
    """The :class:`RequestTimer` subclass of one service: calling it makes a timer bound to ``record``."""

    class ServiceRequestTimer(RequestTimer):
        __slots__ = ()
        _record = staticmethod(record)  # type: ignore[assignment]  # mypy: a def vs a staticmethod

        # ``record`` is a closure variable here, not looked up on the class: leaving is the hot path.
        def __exit__(
            self,
            kind: type[BaseException] | None,
            error: BaseException | None,
            traceback: TracebackType | None,
        ) -> None:
            if kind is None:
                record(perf_counter() - self._started, False)
            elif issubclass(kind, Exception):
                record(perf_counter() - self._started, True)
            # Any other BaseException (cancellation, interrupt): the request did not complete.

        def __aexit__(
            self,
            kind: type[BaseException] | None,
            error: BaseException | None,
            traceback: TracebackType | None,
        ) -> Awaitable[None]:
            if kind is None:
                record(perf_counter() - self._started, False)
            elif issubclass(kind, Exception):
                record(perf_counter() - self._started, True)
            return _DONE

    ServiceRequestTimer.__name__ = ServiceRequestTimer.__qualname__ = RequestTimer.__name__
    return ServiceRequestTimer
