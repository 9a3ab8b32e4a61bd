"""A one-line terminal progress bar fed with watch events."""

from __future__ import annotations

import sys
from typing import TextIO

from comfy_jobs.models import ErrorEvent, Event, Progress, Snapshot, StatusChange

WIDTH = 30


class ProgressBar:
    """Call it with each event (``client.wait(job_id, on_event=ProgressBar())``); it redraws one line."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stderr
        self.percent = 0.0
        self.drawn = False
        self.done = False

    def __call__(self, event: Event) -> None:
        if isinstance(event, Snapshot):
            self.percent = max(self.percent, event.job.progress)
            self.draw(event.job.status)
        elif isinstance(event, Progress):
            self.percent = max(self.percent, event.percent)
            self.draw(f"{event.node_type or event.node_id} {event.value:.0f}/{event.max:.0f}")
        elif isinstance(event, StatusChange):
            if event.status == "succeeded":
                self.percent = 100.0
            self.draw(event.status)
            if event.is_terminal:
                self.finish()
        elif isinstance(event, ErrorEvent):
            self.draw(f"error: {event.code}")

    def draw(self, label: str) -> None:
        if self.done:
            return
        filled = int(WIDTH * self.percent / 100)
        bar = "#" * filled + "." * (WIDTH - filled)
        self.stream.write(f"\r  [{bar}] {self.percent:5.1f}%  {label:<28.28}")
        self.stream.flush()
        self.drawn = True

    def finish(self) -> None:
        """Ends the bar's line (if one was drawn); nothing is drawn after it."""
        if not self.done and self.drawn:
            self.stream.write("\n")
            self.stream.flush()
        self.done = True
