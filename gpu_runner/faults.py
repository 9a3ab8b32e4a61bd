"""Fault injection for the crash tests: ``CRASH_AT_STEP`` makes the runner die like ``kill -9`` there."""

from __future__ import annotations

import os
import signal

from gpu_runner.log import logger


def crash_if(configured: str, step: str) -> None:
    if configured and configured == step:
        logger.warning("crashing on purpose", extra={"step": step})
        os.kill(os.getpid(), signal.SIGKILL)
