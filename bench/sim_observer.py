"""The ComfyUI simulator with one addition: it logs when it hands each ``progress`` frame to its socket.

``python -m bench.sim_observer --frames-log PATH <simulator arguments>``. One JSON line per frame,
``[epoch_seconds, prompt_id, node, value, max]``, written just before the frame goes out, so the
progress latency can be measured from the simulator's own send time (same host, same wall clock).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import IO

from local.comfyui_sim.__main__ import main as simulator_main
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.sim_observer")
    parser.add_argument("--frames-log", required=True)
    known, rest = parser.parse_known_args(argv)
    with Path(known.frames_log).open("a", buffering=1) as log:
        observe(log)
        return simulator_main(rest)


if __name__ == "__main__":
    sys.exit(main())
