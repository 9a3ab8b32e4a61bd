"""Calling a synchronous Lambda handler the way the Lambda service would, from an asyncio server."""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from local.apigw.events import ApiInfo, new_request_id

logger = logging.getLogger(__name__)

Handler = Callable[[dict[str, Any], Any], Any]

# A synchronous invocation's response may not exceed this (Lambda's own figure in its error message).
MAX_RESPONSE_BYTES = 6_291_556


class InvocationError(Exception):
    """The function failed: it raised, or its response could not be serialised. The message is the error's."""


class InvocationTimeout(Exception):
    """The integration timed out before the function answered (the function itself may still be running)."""


class LambdaExecutor(ThreadPoolExecutor):
    """A thread pool whose threads can run handlers as Lambda's runtime would.

    A handler runs on its runtime's main thread, where ``asyncio.get_event_loop()`` works and keeps the
    same loop from one invocation to the next; Mangum relies on that. Each worker thread here gets a loop
    of its own to play that part, closed when the pool shuts down.
    """

    def __init__(self, max_workers: int, name: str = "apigw-lambda") -> None:
        super().__init__(max_workers=max_workers, thread_name_prefix=name, initializer=self._new_loop)
        self._loops: list[asyncio.AbstractEventLoop] = []
        self._loops_lock = threading.Lock()

    def _new_loop(self) -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        with self._loops_lock:
            self._loops.append(loop)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        super().shutdown(wait=wait, cancel_futures=cancel_futures)
        with self._loops_lock:
            loops, self._loops = self._loops, []
        for loop in loops:
            # A handler still running past its timeout keeps its loop; the thread ends with it.
            if not loop.is_running():
                loop.close()


def lambda_executor(max_workers: int, name: str = "apigw-lambda") -> LambdaExecutor:
    return LambdaExecutor(max_workers, name)


@dataclass
class LambdaContext:
    """The attributes of the Lambda Python runtime's context object that handlers and Powertools read."""

    function_name: str
    invoked_function_arn: str
    aws_request_id: str
    log_group_name: str
    log_stream_name: str
    function_version: str = "$LATEST"
    memory_limit_in_mb: int = 1024
    deadline_ms: int = 0
    identity: Any = None
    client_context: Any = None
    tenant_id: str | None = None
    _clock: Callable[[], float] = field(default=time.monotonic, repr=False)

    def get_remaining_time_in_millis(self) -> int:
        return max(0, self.deadline_ms - int(self._clock() * 1000))


@dataclass(frozen=True)
class LambdaFunction:
    """A handler with the settings the Lambda service would run it under."""

    handler: Handler
    name: str
    timeout_s: float = 30.0
    memory_mb: int = 1024


def as_function(handler: Handler | LambdaFunction, default_name: str) -> LambdaFunction:
    return handler if isinstance(handler, LambdaFunction) else LambdaFunction(handler, default_name)


def make_context(function: LambdaFunction, api: ApiInfo) -> LambdaContext:
    arn = f"arn:aws:lambda:{api.region}:{api.account_id}:function:{function.name}"
    return LambdaContext(
        function_name=function.name,
        invoked_function_arn=arn,
        aws_request_id=new_request_id(),
        log_group_name=f"/aws/lambda/{function.name}",
        log_stream_name=f"{time.strftime('%Y/%m/%d')}/[$LATEST]local",
        memory_limit_in_mb=function.memory_mb,
        deadline_ms=int(time.monotonic() * 1000 + function.timeout_s * 1000),
    )


def _run(function: LambdaFunction, payload: str, context: LambdaContext) -> Any:
    # A JSON round trip both ways, as Lambda does: the handler gets its own copy of the event, and a
    # response that is not JSON (a datetime, a set) fails the invocation instead of slipping through.
    event = json.loads(payload)
    try:
        result = function.handler(event, context)
    except Exception as exc:
        logger.exception("Lambda %s raised", function.name)
        raise InvocationError(str(exc)) from exc
    try:
        serialized = json.dumps(result)
    except (TypeError, ValueError) as exc:
        logger.error("Lambda %s returned a response that is not JSON: %s", function.name, exc)
        raise InvocationError("Unable to marshal response") from exc
    if len(serialized.encode()) > MAX_RESPONSE_BYTES:
        logger.error("Lambda %s returned %d bytes, over the 6 MB limit", function.name, len(serialized))
        raise InvocationError("Response payload size exceeded maximum allowed payload size")
    return json.loads(serialized)


async def invoke(
    function: LambdaFunction,
    event: dict[str, Any],
    *,
    api: ApiInfo,
    executor: Executor,
    timeout_s: float,
) -> Any:
    """Run the handler on the executor, never on the event loop; raise InvocationError or
    InvocationTimeout as the Lambda service would report them to API Gateway."""
    loop = asyncio.get_running_loop()
    payload = json.dumps(event)
    context = make_context(function, api)
    future = loop.run_in_executor(executor, _run, function, payload, context)
    try:
        return await asyncio.wait_for(future, timeout=min(timeout_s, function.timeout_s))
    except TimeoutError as exc:
        if function.timeout_s < timeout_s:
            # The function's own timeout struck first: to API Gateway that is a failed invocation.
            logger.error("Lambda %s timed out after %.1f s", function.name, function.timeout_s)
            raise InvocationError(f"Task timed out after {function.timeout_s:.2f} seconds") from exc
        logger.error(
            "Lambda %s did not answer within the %.1f s integration timeout", function.name, timeout_s
        )
        raise InvocationTimeout(function.name) from exc
