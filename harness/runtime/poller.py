"""The polling thread shared by everything that drains a queue for the harness."""

from __future__ import annotations

import threading
import time


class QueuePoller:
    """A daemon thread calling `poll_once` until stopped; pausable for data resets.

    `in_flight` is true while a poll (and the invocations it starts) is under way, which is
    what quiescence checks read. Errors from the emulator are kept, not raised, so one
    hiccup does not stop the flow.
    """

    def __init__(self, name: str, poll_interval: float = 0.05) -> None:
        self.poll_interval = poll_interval
        self.in_flight = False
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._paused = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)

    def poll_once(self) -> bool:
        """Handle one batch; return True when there was work."""
        raise NotImplementedError

    def enabled(self) -> bool:
        return True

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def pause(self) -> None:
        self._paused.set()
        while self.in_flight:
            time.sleep(0.01)

    def resume(self) -> None:
        self._paused.clear()

    def _loop(self) -> None:
        while not self._stop.is_set():
            if self._paused.is_set() or not self.enabled():
                time.sleep(self.poll_interval)
                continue
            self.in_flight = True
            try:
                handled = self.poll_once()
            except Exception as exc:  # noqa: BLE001 - the poller must survive emulator hiccups
                self.errors.append(f"{type(exc).__name__}: {exc}")
                handled = False
            finally:
                self.in_flight = False
            if not handled:
                time.sleep(self.poll_interval)
