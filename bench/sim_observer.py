"""The ComfyUI simulator with two additions: it logs when it hands each ``progress`` frame to its socket,
when it receives each request to stop a prompt, and when it pauses for ComfyUI's garbage collection.

``python -m bench.sim_observer --frames-log PATH [--stops-log PATH] [--gc-log PATH] <simulator arguments>``.
One JSON line per frame, ``[epoch_seconds, prompt_id, node, value, max]``, written just before the frame
goes out, so the progress latency can be measured from the simulator's own send time (same host, same wall
clock); one line per stop request, ``[epoch_seconds, "interrupt" | "delete", prompt_id]``, as it arrives;
one line ``[start, end]`` (epoch seconds) per collection, so an idle gap can be told ComfyUI's or the
runner's.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import IO

from aiohttp import web

from local.comfyui_sim.__main__ import main as simulator_main
from local.comfyui_sim.executor import Executor
from local.comfyui_sim.server import Simulator
from local.comfyui_sim.ws import SocketHub

PROGRESS_PREFIX = '{"type": "progress"'


def observe(log: IO[str]) -> None:
    original = SocketHub.deliver

    async def deliver(hub: SocketHub, payload: str | bytes, sid: str | None) -> None:
        if isinstance(payload, str) and payload.startswith(PROGRESS_PREFIX):
            data = json.loads(payload)["data"]
            row = [time.time(), data.get("prompt_id"), data.get("node"), data.get("value"), data.get("max")]
            log.write(json.dumps(row) + "\n")
        await original(hub, payload, sid)

    setattr(SocketHub, "deliver", deliver)  # noqa: B010


def observe_stops(log: IO[str]) -> None:
    interrupt, queue = Simulator.post_interrupt, Simulator.post_queue

    async def post_interrupt(server: Simulator, request: web.Request) -> web.Response:
        body = await request.json() if request.can_read_body else {}
        log.write(json.dumps([time.time(), "interrupt", (body or {}).get("prompt_id")]) + "\n")
        return await interrupt(server, request)

    async def post_queue(server: Simulator, request: web.Request) -> web.Response:
        at = time.time()
        for prompt_id in (await request.json()).get("delete", []):
            log.write(json.dumps([at, "delete", prompt_id]) + "\n")
        return await queue(server, request)

    setattr(Simulator, "post_interrupt", post_interrupt)  # noqa: B010
    setattr(Simulator, "post_queue", post_queue)  # noqa: B010


def observe_gc(log: IO[str]) -> None:
    original = Executor.collect_garbage

    def collect_garbage(executor: Executor) -> None:
        started = time.time()
        original(executor)
        log.write(json.dumps([started, time.time()]) + "\n")

    setattr(Executor, "collect_garbage", collect_garbage)  # noqa: B010


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.sim_observer")
    parser.add_argument("--frames-log", required=True)
    parser.add_argument("--stops-log")
    parser.add_argument("--gc-log")
    known, rest = parser.parse_known_args(argv)
    with Path(known.frames_log).open("a", buffering=1) as log:
        observe(log)
        if known.stops_log:
            observe_stops(Path(known.stops_log).open("a", buffering=1))  # noqa: SIM115
        if known.gc_log:
            observe_gc(Path(known.gc_log).open("a", buffering=1))  # noqa: SIM115
        return simulator_main(rest)


if __name__ == "__main__":
    sys.exit(main())
