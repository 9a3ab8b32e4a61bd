"""``python -m local up`` serves the local stack until Ctrl-C; ``python -m local demo`` runs one job."""

from __future__ import annotations

import argparse
import signal
import sys
import threading

from local.settings import LocalStackSettings
from local.stack import LocalStack


def up(settings: LocalStackSettings) -> int:
    stack = LocalStack(settings)
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    try:
        stack.start()
        key = stack.api_keys[0]
        print(
            f"""
comfy-api-service local stack is up.
  REST API       {stack.rest_url}/v1/   (docs: {stack.rest_url}/v1/docs)
  WebSocket API  {stack.websocket_url or "-"}
  Console        {stack.rest_url}/console/   (sign in with the API key below)
  AWS (moto)     {stack.aws_endpoint}
  ComfyUI        {stack.comfyui_url}{"" if settings.comfyui_url else "  (simulator)"}
  Runners        {len(stack.runners)}; start more with:
                   env $(cat {stack.runner_env_path}) .venv/bin/python -m gpu_runner
  API key        {key}{f"  (+{len(stack.api_keys) - 1} more)" if len(stack.api_keys) > 1 else ""}

  Tenants        .venv/bin/python -m admin tenants --local {stack.state_dir} create NAME --tier free

  curl -s -H 'x-api-key: {key}' {stack.rest_url}/v1/health
Ctrl-C stops everything.""",
            flush=True,
        )
        stopping.wait()
    except KeyboardInterrupt:
        pass
    finally:
        stack.stop()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m local", description=__doc__)
    parser.add_argument("command", choices=["up", "demo"])
    args = parser.parse_args(argv)
    settings = LocalStackSettings()
    if args.command == "up":
        return up(settings)
    from local.demo import demo

    return demo(settings)


if __name__ == "__main__":
    sys.exit(main())
