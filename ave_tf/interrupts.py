"""Ctrl-C as a request to stop that cannot get lost.

Python's own SIGINT handler raises `KeyboardInterrupt` wherever the main thread next runs
Python code. When that code is a finalizer (a ``__del__`` method, a weakref callback: TensorFlow
runs many, e.g. ``ConcreteFunctionGarbageCollector.__del__`` whenever the garbage collector
frees a traced function), Python prints "Exception ignored in ..." and carries on: the Ctrl-C is
gone and a training runs to its end (measured: 3 of 30 SIGINTs sent at random times, 0.2-8 s,
into a tiny 4-epoch ``trainers.training.run_training`` were lost; 0 of 30 inside
`handling_ctrl_c()`, one of which a finalizer had swallowed).

Inside `handling_ctrl_c()` (which ``ave_tf.cli.run`` wraps around every program):

- the first Ctrl-C records the request, then raises `KeyboardInterrupt` as usual; should a
  finalizer swallow it, nothing is printed and long loops still stop at their next safe point,
  where they call `raise_if_requested()` (the trainers do at every batch and epoch end);
- the second Ctrl-C ends the process at once (the default action, even inside a long
  TensorFlow op that Python cannot interrupt).

Library code calls `raise_if_requested()` only; without `handling_ctrl_c()` it never raises.
"""

import contextlib
import signal
import sys
import threading

_requests = 0
"""Ctrl-Cs received inside `handling_ctrl_c()` (reset when it ends)."""


def requested() -> bool:
    """Whether Ctrl-C was pressed since `handling_ctrl_c()` began."""
    return _requests > 0


def raise_if_requested() -> None:
    """Raises `KeyboardInterrupt` if Ctrl-C was pressed (a safe point to stop at)."""
    if requested():
        raise KeyboardInterrupt


def _on_sigint(signum, frame):
    global _requests
    _requests += 1
    signal.signal(signal.SIGINT, signal.SIG_DFL)  # A second Ctrl-C ends the process at once.
    raise KeyboardInterrupt


def _quiet_about_requested_interrupts(report):
    """An `sys.unraisablehook` that drops the KeyboardInterrupts of a recorded Ctrl-C."""

    def hook(unraisable):
        if not (requested() and issubclass(unraisable.exc_type, KeyboardInterrupt)):
            report(unraisable)

    return hook


@contextlib.contextmanager
def handling_ctrl_c():
    """Ctrl-C handling of the module docstring for the block (main thread only; elsewhere,
    where Python delivers no signals, the block runs unchanged). A process started with
    SIGINT ignored (a background job, `nohup`) keeps ignoring it, as Python itself does."""
    global _requests
    ignored = signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    if ignored or threading.current_thread() is not threading.main_thread():
        yield
        return
    previous_handler = signal.signal(signal.SIGINT, _on_sigint)
    previous_hook = sys.unraisablehook
    sys.unraisablehook = _quiet_about_requested_interrupts(previous_hook)
    try:
        yield
    finally:
        signal.signal(
            signal.SIGINT, signal.SIG_DFL if previous_handler is None else previous_handler
        )
        sys.unraisablehook = previous_hook
        _requests = 0
