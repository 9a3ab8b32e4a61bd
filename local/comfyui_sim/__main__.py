"""``python -m local.comfyui_sim --host 127.0.0.1 --port 8188 [--step-delay 0.05] [--data-dir DIR]``."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from types import FrameType

from .executor import GC_INTERVAL_SECONDS, GC_PAUSE_SECONDS
from .simulator import SimulatorServer


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m local.comfyui_sim", description="Simulated ComfyUI server"
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8188, help="0 picks a free port")
    parser.add_argument("--step-delay", type=float, default=0.05, help="seconds per KSampler step")
    parser.add_argument(
        "--node-delay", type=float, default=0.0, help="extra seconds for every node that runs"
    )
    parser.add_argument(
        "--gc-interval",
        type=float,
        default=GC_INTERVAL_SECONDS,
        help="ComfyUI collects garbage after a prompt once this many seconds passed since the last time",
    )
    parser.add_argument(
        "--gc-pause", type=float, default=GC_PAUSE_SECONDS, help="seconds each garbage collection takes"
    )
    parser.add_argument(
        "--data-dir", default=None, help="holds input/, output/ and temp/ (default: a temp dir)"
    )
    parser.add_argument(
        "--preview-method",
        choices=("none", "auto", "latent2rgb", "taesd"),
        default="none",
        help="as ComfyUI's: samplers send a preview with each step unless none (ComfyUI's default)",
    )
    parser.add_argument(
        "--extra-model-paths-config", default=None, help="ComfyUI's YAML of more model folders to read"
    )
    parser.add_argument("--log-level", default="WARNING")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    server = SimulatorServer(
        host=args.host,
        port=args.port,
        step_delay=args.step_delay,
        data_dir=args.data_dir,
        node_delay=args.node_delay,
        gc_interval=args.gc_interval,
        gc_pause=args.gc_pause,
        preview_method=args.preview_method,
        extra_model_paths=args.extra_model_paths_config,
    )
    done = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        done.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    server.start()
    print(f"comfyui-sim listening on {server.url}", flush=True)
    try:
        while not done.wait(0.5):
            pass
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
