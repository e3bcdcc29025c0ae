"""SIGTERM/SIGINT handling survives a second signal arriving inside the first one's handler."""

from __future__ import annotations

import threading

from server.transport.shutdown import Signals


class _SignalledWhileSetting(threading.Event):
    """An Event whose set() takes a second signal while it holds its lock, as Python may run a
    handler between any two bytecodes of the main thread."""

    def __init__(self) -> None:
        super().__init__()
        self.handler: Signals | None = None

    def set(self) -> None:
        with self._cond:  # type: ignore[attr-defined]  # threading.Event's own lock
            self._flag = True  # type: ignore[attr-defined]
            handler, self.handler = self.handler, None
            if handler is not None:
                handler.handle(15, None)  # the second SIGTERM, here
            self._cond.notify_all()  # type: ignore[attr-defined]


def test_a_signal_inside_the_handler_neither_hangs_nor_is_lost() -> None:
    stop = _SignalledWhileSetting()
    signals = Signals(stop=stop, hurry=threading.Event())
    stop.handler = signals
    # In a thread: a nested set() of the same Event would wait on its own lock forever.
    thread = threading.Thread(target=signals.handle, args=(15, None), daemon=True)
    thread.start()
    thread.join(timeout=10)
    assert not thread.is_alive()
    assert stop.is_set()
    assert signals.hurry.is_set()  # two signals: the second skips the pre-stop delay


def test_one_signal_stops_without_hurrying_and_a_later_one_hurries() -> None:
    signals = Signals(stop=threading.Event(), hurry=threading.Event())
    signals.handle(15, None)
    assert signals.stop.is_set() and not signals.hurry.is_set()
    signals.handle(2, None)
    assert signals.hurry.is_set()
