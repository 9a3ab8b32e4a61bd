"""The WebSocket API's REQUEST authorizer on ``$connect``: a valid ``token`` query parameter or no socket."""

from __future__ import annotations

import time
from functools import lru_cache
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from functions.observability import logger
from shared.aws.clients import AwsClients
from shared.names import WS_TOKEN_QUERY_PARAMETER
from shared.secrets import SigningSecret
from shared.settings import WebSocketSettings
from shared.ws_tokens import InvalidToken, verify_token


@lru_cache(maxsize=1)
def _signing() -> SigningSecret:
    settings = WebSocketSettings()
    clients = AwsClients()
    return SigningSecret(
        settings.ws_token_secret, settings.ws_token_secret_arn, lambda: clients.secretsmanager
    )


def _policy(principal: str, effect: str, resource: str, context: dict[str, str]) -> dict[str, Any]:
    return {
        "principalId": principal,
        "policyDocument": {
            "Version": "2012-10-17",
            "Statement": [{"Action": "execute-api:Invoke", "Effect": effect, "Resource": resource}],
        },
        "context": context,
    }


@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    token = (event.get("queryStringParameters") or {}).get(WS_TOKEN_QUERY_PARAMETER) or ""
    now_s = int(time.time())
    try:
        claims = _signing().verify(lambda accepted: verify_token(accepted, str(token), now_s), InvalidToken)
    except InvalidToken as refused:
        logger.info("connection refused", extra={"reason": str(refused)})
        # API Gateway answers 401 to the handshake when the authorizer raises exactly this.
        raise Exception("Unauthorized") from None
    return _policy(claims.owner, "Allow", event["methodArn"], {"owner": claims.owner})
