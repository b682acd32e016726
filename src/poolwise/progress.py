"""How far a long computation has got, told to whoever shows it (the CLI's progress bar).

The sampler reports after each segment of its iterations (``update``); the stage that runs it
names what is running (``task``). Nothing listens by default, so library calls and tests stay
silent; the CLI installs a listener for the length of a command (``listening``).
"""

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

Listener = Callable[[str, int, int], None]

_listener: ContextVar[Listener | None] = ContextVar("poolwise_progress_listener", default=None)
_task: ContextVar[str] = ContextVar("poolwise_progress_task", default="Sampling")


@contextmanager
def listening(listener: Listener) -> Iterator[None]:
    """Send every ``update`` inside the block to ``listener(task, done, total)``.

    Parameters
    ----------
    listener : callable
        Called with the running task's name, the iterations done and the iterations in all.

    Examples
    --------
    >>> seen = []
    >>> with listening(lambda task, done, total: seen.append((task, done, total))):
    ...     update(50, 200)
    >>> seen
    [('Sampling', 50, 200)]
    """
    token = _listener.set(listener)
    try:
        yield
    finally:
        _listener.reset(token)


@contextmanager
def task(name: str) -> Iterator[None]:
    """Name what the sampler runs inside the block (a model's fit, a batch of refits).

    Parameters
    ----------
    name : str
        Shown beside the bar, e.g. ``"partial pooling"``.

    Examples
    --------
    >>> seen = []
    >>> with listening(lambda *args: seen.append(args)), task("partial pooling"):
    ...     update(2000, 2000)
    >>> seen
    [('partial pooling', 2000, 2000)]
    """
    token = _task.set(name)
    try:
        yield
    finally:
        _task.reset(token)


def update(done: int, total: int) -> None:
    """Tell the listener, if any, that ``done`` of ``total`` iterations of the running task are done.

    Parameters
    ----------
    done, total : int
        Iterations done and in all (warm-up included).

    Examples
    --------
    >>> update(10, 100)  # nobody listens: nothing happens
    """
    listener = _listener.get()
    if listener is not None:
        listener(_task.get(), done, total)
