"""Slowing down guesses: a few wrong join codes are a typo, thirty in a few seconds are someone guessing.

`Throttle` counts failures per key (a browser, a network address) in a sliding window.
After `allowed` failures within `window` seconds a key must wait before it may try again,
and each further failure doubles the wait (up to `longest`). Success does not reset
another key. It lives in the server's memory, shared by every session: a class's real
students, who type a code once or twice, never meet it.
"""

from __future__ import annotations

import threading
import time
from collections import deque


class Throttle:
    """Failures per key; `wait_for(keys)` says how many seconds the most-throttled of `keys` must still wait."""

    def __init__(self, allowed: int = 5, window: float = 60.0, first_wait: float = 10.0, longest: float = 300.0, clock=time.monotonic):
        self.allowed, self.window, self.first_wait, self.longest = allowed, window, first_wait, longest
        self.clock = clock
        self._failures: dict[str, deque[float]] = {}
        self._blocked_until: dict[str, float] = {}
        self._lock = threading.Lock()

    def wait_for(self, keys) -> float:
        """Seconds until every one of `keys` may try again (0 when they may now)."""
        now = self.clock()
        with self._lock:
            return max([0.0] + [self._blocked_until.get(key, 0.0) - now for key in keys if key])

    def failed(self, keys) -> None:
        """Count a failure (a wrong code) for each of `keys`."""
        now = self.clock()
        with self._lock:
            for key in keys:
                if not key:
                    continue
                failures = self._failures.setdefault(key, deque())
                failures.append(now)
                while failures and failures[0] < now - self.window:
                    failures.popleft()
                extra = len(failures) - self.allowed
                if extra >= 0:
                    self._blocked_until[key] = now + min(self.longest, self.first_wait * 2**extra)
            if len(self._failures) > 10_000:  # forget keys that have been quiet for a window
                for key in [key for key, times in self._failures.items() if not times or times[-1] < now - self.window]:
                    self._failures.pop(key, None)
                    self._blocked_until.pop(key, None)
