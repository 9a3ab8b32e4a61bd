"""ECS task scale-in protection: on while the runner holds a job, off when it is idle.

ECS never stops a protected task to scale in or to deploy, so shrinking the fleet as the backlog drains
takes idle runners only. The runner asks the ECS agent (``$ECS_AGENT_URI/task-protection/v1/state``),
which calls UpdateTaskProtection with the task's own role. The protection is a convenience, never a
condition: a failed or slow call is logged and the job goes on (and the next change tries again).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import aiohttp

from gpu_runner.log import logger

STATE_PATH = "/task-protection/v1/state"
# A call that hangs must not hold a job back: the agent answers in milliseconds when it is well.
REQUEST_TIMEOUT_SECONDS = 2.0


class TaskProtection:
    """Keeps the agent's protection in step with ``is_busy()``, one call at a time, in order."""

    def __init__(self, agent_uri: str, minutes: int, is_busy: Callable[[], bool]) -> None:
        self._url = agent_uri.rstrip("/") + STATE_PATH if agent_uri else ""
        self._minutes = minutes
        self._is_busy = is_busy
        self._lock = asyncio.Lock()
        # What the agent last confirmed; None: unknown (never set, or the last call failed).
        self._protected: bool | None = None
        self._session: aiohttp.ClientSession | None = None

    @property
    def enabled(self) -> bool:
        return bool(self._url)

    async def sync(self) -> None:
        """Protect (renewing the window) while busy, unprotect when idle. Never raises."""
        if not self._url:
            return
        async with self._lock:
            # Read under the lock: of two calls racing, the later one sends the state that holds now.
            busy = self._is_busy()
            if not busy and self._protected is False:
                return
            body: dict[str, object] = {"ProtectionEnabled": busy}
            if busy:
                body["ExpiresInMinutes"] = self._minutes
            self._protected = await self._put(body)

    async def _put(self, body: dict[str, object]) -> bool | None:
        try:
            session = self._session or aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_SECONDS)
            )
            self._session = session
            async with session.put(self._url, json=body) as response:
                answer = await response.json(content_type=None)
                if response.status >= 300 or not isinstance(answer, dict) or "protection" not in answer:
                    logger.warning(
                        "task protection refused",
                        extra={"status": response.status, "answer": str(answer)[:500], "asked": body},
                    )
                    return None
                enabled = bool(answer["protection"].get("ProtectionEnabled"))
                # Set and cleared around every job: routine, so DEBUG (a refusal or failure is a WARNING).
                logger.debug("task protection set", extra={"protected": enabled})
                return enabled
        except Exception as error:  # whatever goes wrong here, the job goes on
            logger.warning("task protection unavailable", extra={"error": repr(error), "asked": body})
            return None

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
