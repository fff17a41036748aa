"""Peak resident memory of this process while a block runs (Linux /proc; tests only)."""

import os
import threading


def rss_bytes() -> int:
    """This process's resident set size now."""
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class PeakRss:
    """`with PeakRss() as peak: ...` then `peak.growth_bytes`: the highest RSS sampled (every
    `interval` s) during the block minus the RSS at its start."""

    def __init__(self, interval: float = 0.005):
        self._interval = interval
        self._stop = threading.Event()
        self.start_bytes = self.peak_bytes = 0

    def _sample(self) -> None:
        while not self._stop.wait(self._interval):
            self.peak_bytes = max(self.peak_bytes, rss_bytes())

    def __enter__(self) -> "PeakRss":
        self.start_bytes = self.peak_bytes = rss_bytes()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.peak_bytes = max(self.peak_bytes, rss_bytes())

    @property
    def growth_bytes(self) -> int:
        return self.peak_bytes - self.start_bytes
