"""The polling thread shared by everything that drains a queue for the harness."""

from __future__ import annotations

import threading
import time


class QueuePoller:
    """A daemon thread calling `poll_once` until stopped; pausable for data resets.

    `in_flight` is true from the moment a receive returned messages until they are handled,
    which is what quiescence checks read (a message being received is already counted by the
    queue as not visible, so an empty receive does not count as activity). Errors from the
    emulator are kept, not raised, so one hiccup does not stop the flow.
    """

    def __init__(self, name: str, poll_interval: float = 0.05) -> None:
        self.poll_interval = poll_interval
        self.in_flight = False
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._paused = threading.Event()
        self._polling = threading.Lock()
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
        """Stop polling; returns once any poll under way has finished."""
        self._paused.set()
        with self._polling:
            pass

    def resume(self) -> None:
        self._paused.clear()

    def _loop(self) -> None:
        while not self._stop.is_set():
            with self._polling:
                if self._paused.is_set() or not self.enabled():
                    handled = False
                else:
                    try:
                        handled = self.poll_once()
                    except Exception as exc:  # noqa: BLE001 - the poller must survive emulator hiccups
                        self.errors.append(f"{type(exc).__name__}: {exc}")
                        handled = False
                    finally:
                        self.in_flight = False
            if not handled:
                time.sleep(self.poll_interval)
