"""Run the emulator as its own process: ``python -m local.apigw --rest functions.api.main:handler ...``.

Handlers are named ``module:attribute`` and imported into this process; their settings come from this
process's environment, as on Lambda. Once listening it prints one JSON line with the URLs, then serves
until SIGINT or SIGTERM.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import json
import logging
import signal
import sys
import threading
from collections.abc import Sequence
from typing import Any

from local.apigw.events import ApiInfo
from local.apigw.invoke import LambdaFunction
from local.apigw.rest import RestApiEmulator
from local.apigw.server import ApiGatewayEmulator
from local.apigw.websocket import WebSocketApiEmulator


def load(spec: str) -> Any:
    module_name, _, attribute = spec.partition(":")
    if not attribute:
        raise argparse.ArgumentTypeError(f"expected module:attribute, got {spec!r}")
    target: Any = importlib.import_module(module_name)
    for part in attribute.split("."):
        target = getattr(target, part)
    return target


def _pair(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name or not value:
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {text!r}")
    return name, value


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m local.apigw", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--rest", metavar="MODULE:HANDLER", help="the REST API's proxy handler")
    parser.add_argument("--rest-port", type=int, default=0)
    parser.add_argument("--rest-stage", default="local")
    parser.add_argument(
        "--api-key", type=_pair, action="append", default=[], metavar="VALUE=ID", help="repeatable"
    )
    parser.add_argument(
        "--public-path",
        action="append",
        default=[],
        metavar="PATH",
        help="a resource path served to GET without an API key; {name} is one segment (repeatable)",
    )
    parser.add_argument("--binary-media-type", action="append", default=[])
    parser.add_argument(
        "--ws-route", type=_pair, action="append", default=[], metavar="ROUTE_KEY=MODULE:HANDLER"
    )
    parser.add_argument("--ws-authorizer", metavar="MODULE:HANDLER")
    parser.add_argument("--ws-identity-source", action="append", default=[])
    parser.add_argument("--ws-port", type=int, default=0)
    parser.add_argument("--ws-stage", default="local")
    parser.add_argument("--route-selection-expression", default="$request.body.action")
    parser.add_argument("--log-level", default="INFO")
    args = parser.parse_args(argv)
    if not args.rest and not args.ws_route:
        parser.error("give --rest, --ws-route, or both")
    return args


def build(args: argparse.Namespace) -> ApiGatewayEmulator:
    rest = None
    if args.rest:
        rest = RestApiEmulator(
            LambdaFunction(load(args.rest), name="api"),
            dict(args.api_key),
            api=ApiInfo(stage=args.rest_stage),
            binary_media_types=args.binary_media_type,
            public_paths=args.public_path,
        )
    websocket = None
    if args.ws_route:
        websocket = WebSocketApiEmulator(
            {key: load(spec) for key, spec in args.ws_route},
            authorizer=load(args.ws_authorizer) if args.ws_authorizer else None,
            route_selection_expression=args.route_selection_expression,
            identity_sources=args.ws_identity_source,
            api=ApiInfo(api_id="local0wsap", stage=args.ws_stage),
        )
    return ApiGatewayEmulator(
        rest, websocket, host=args.host, rest_port=args.rest_port, websocket_port=args.ws_port
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=args.log_level, stream=sys.stderr)
    emulator = build(args)
    stopping = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stopping.set())
    urls = emulator.start()
    print(json.dumps(dataclasses.asdict(urls)), flush=True)
    try:
        stopping.wait()
    finally:
        emulator.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
