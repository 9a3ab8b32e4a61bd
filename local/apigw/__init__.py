"""A local API Gateway: real HTTP and WebSocket traffic in, the Lambda events API Gateway sends out.

``RestApiEmulator`` turns HTTP requests into REST proxy integration events (payload 1.0) for one handler;
``WebSocketApiEmulator`` runs an authorizer and route handlers (or, on ``$connect``, a ``MockIntegration``:
no function, the request template's ``statusCode`` decides) and serves ``@connections``;
``ApiGatewayEmulator`` runs either or both on 127.0.0.1 on a background thread, and
``python -m local.apigw`` does the same as a process of its own.

URLs (two ports, as they are two APIs with two hosts in AWS):
- REST ``http://127.0.0.1:R``: the API as a custom domain mapped to the stage at its root, resources
  ``ANY /`` and ``ANY /{proxy+}``, so ``GET /v1/jobs`` arrives with ``path`` ``/v1/jobs`` (on the default
  execute-api URL, ``.../<stage>/v1/jobs``, ``path`` is the same but ``requestContext.path`` has the stage);
- WebSocket ``ws://127.0.0.1:W/<stage>`` (stage ``local`` by default);
- management ``http://127.0.0.1:W/<stage>``: boto3's ``endpoint_url``; it calls
  ``/<stage>/@connections/<url-encoded id>``.

Knowingly unlike API Gateway:
- ``domainName`` is the Host header, port included; ``X-Forwarded-Proto`` is ``http``.
- A body that is not UTF-8 is base64-encoded even without binary media types (API Gateway would mangle it).
- Route handlers' responses never reach the client (no route responses); only ``$connect``'s status counts.
- A mock integration's request templates are static JSON (no VTL), selected by a static expression.
- The authorizer runs even when there is no ``$connect`` route; its answers are not cached.
- ``@connections`` checks no signature; there is no idle (10 min) or lifetime (2 h) limit on connections,
  no throttling or usage plans, and no check of Lambda's 6 MB limit on request payloads.
- Close reasons for ``$disconnect`` other than a client's own, ``@connections`` DELETE (1000) and server
  shutdown (1001) are approximations.
"""

from local.apigw.events import ApiInfo
from local.apigw.invoke import LambdaContext, LambdaFunction
from local.apigw.mock import MockIntegration
from local.apigw.rest import RestApiEmulator
from local.apigw.server import ApiGatewayEmulator, EmulatorUrls
from local.apigw.websocket import WebSocketApiEmulator

__all__ = [
    "ApiGatewayEmulator",
    "ApiInfo",
    "EmulatorUrls",
    "LambdaContext",
    "LambdaFunction",
    "MockIntegration",
    "RestApiEmulator",
    "WebSocketApiEmulator",
]
