"""The event builders and API Gateway's own decisions, checked against documented and recorded events."""

from __future__ import annotations

import base64
import json
import re
from typing import Any

import pytest
from aws_lambda_powertools.utilities.parser.models import (
    APIGatewayProxyEventModel,
    APIGatewayWebSocketConnectEventModel,
    APIGatewayWebSocketDisconnectEventModel,
    APIGatewayWebSocketMessageEventModel,
)

from local.apigw.events import (
    ApiInfo,
    RestRequest,
    WsPeer,
    connect_arn,
    encode_body,
    fold,
    new_gateway_id,
    request_time,
    rest_proxy_event,
    ws_authorizer_event,
    ws_connect_event,
    ws_disconnect_event,
    ws_message_event,
)
from local.apigw.policy import RouteSelector, Verdict, evaluate_authorizer_response
from local.apigw.rest import MalformedResponseError, proxy_response_to_http

pytestmark = pytest.mark.unit

# AWS API Gateway Developer Guide, "Lambda proxy integrations in API Gateway", section "Input format of a
# Lambda function for proxy integration" (REST API, payload 1.0).
AWS_REST_PROXY_EXAMPLE: dict[str, Any] = {
    "resource": "/my/path",
    "path": "/my/path",
    "httpMethod": "GET",
    "headers": {"header1": "value1", "header2": "value2"},
    "multiValueHeaders": {"header1": ["value1"], "header2": ["value1", "value2"]},
    "queryStringParameters": {"parameter1": "value1", "parameter2": "value"},
    "multiValueQueryStringParameters": {"parameter1": ["value1", "value2"], "parameter2": ["value"]},
    "requestContext": {
        "accountId": "123456789012",
        "apiId": "id",
        "authorizer": {"claims": None, "scopes": None},
        "domainName": "id.execute-api.us-east-1.amazonaws.com",
        "domainPrefix": "id",
        "extendedRequestId": "request-id",
        "httpMethod": "GET",
        "identity": {
            "accessKey": None,
            "accountId": None,
            "caller": None,
            "cognitoAuthenticationProvider": None,
            "cognitoAuthenticationType": None,
            "cognitoIdentityId": None,
            "cognitoIdentityPoolId": None,
            "principalOrgId": None,
            "sourceIp": "IP",
            "user": None,
            "userAgent": "user-agent",
            "userArn": None,
            "clientCert": {
                "clientCertPem": "CERT_CONTENT",
                "subjectDN": "www.example.com",
                "issuerDN": "Example issuer",
                "serialNumber": "a1:a1:a1:a1:a1:a1:a1:a1:a1:a1:a1:a1:a1:a1:a1:a1",
                "validity": {"notBefore": "May 28 12:30:02 2019 GMT", "notAfter": "Aug  5 09:36:04 2021 GMT"},
            },
        },
        "path": "/my/path",
        "protocol": "HTTP/1.1",
        "requestId": "id=",
        "requestTime": "04/Mar/2020:19:15:17 +0000",
        "requestTimeEpoch": 1583349317135,
        "resourceId": None,
        "resourcePath": "/my/path",
        "stage": "$default",
    },
    "pathParameters": None,
    "stageVariables": None,
    "body": "Hello from Lambda!",
    "isBase64Encoded": False,
}
# Our REST API differs from that example only by configuration: it requires API keys (identity gains
# apiKey/apiKeyId), has no Lambda or Cognito authorizer (no requestContext.authorizer) and no mutual TLS
# (no identity.clientCert).
REST_CONTEXT_KEYS = set(AWS_REST_PROXY_EXAMPLE["requestContext"]) - {"authorizer"}
REST_IDENTITY_KEYS = (set(AWS_REST_PROXY_EXAMPLE["requestContext"]["identity"]) - {"clientCert"}) | {
    "apiKey",
    "apiKeyId",
}

# Events recorded from API Gateway WebSocket APIs, from aws-powertools/powertools-lambda-python
# tests/events/apiGatewayWebSocketApiConnect.json, apiGatewayWebSocketApiDisconnect.json,
# apiGatewayWebSocketApiMessage.json and apiGatewayAuthorizerWebSocketEvent.json (headers shortened).
AWS_WS_CONNECT_EXAMPLE: dict[str, Any] = {
    "headers": {
        "Host": "fjnq7njcv2.execute-api.us-east-1.amazonaws.com",
        "Sec-WebSocket-Extensions": "permessage-deflate; client_max_window_bits",
        "Sec-WebSocket-Key": "+W5xw47OHh3OTFsWKjGu9Q==",
        "Sec-WebSocket-Version": "13",
        "X-Amzn-Trace-Id": "Root=1-6731ebfc-08e1e656421db73c5d2eef31",
        "X-Forwarded-For": "166.90.225.1",
        "X-Forwarded-Port": "443",
        "X-Forwarded-Proto": "https",
    },
    "multiValueHeaders": {
        "Host": ["fjnq7njcv2.execute-api.us-east-1.amazonaws.com"],
        "Sec-WebSocket-Extensions": ["permessage-deflate; client_max_window_bits"],
        "Sec-WebSocket-Key": ["+W5xw47OHh3OTFsWKjGu9Q=="],
        "Sec-WebSocket-Version": ["13"],
        "X-Amzn-Trace-Id": ["Root=1-6731ebfc-08e1e656421db73c5d2eef31"],
        "X-Forwarded-For": ["166.90.225.1"],
        "X-Forwarded-Port": ["443"],
        "X-Forwarded-Proto": ["https"],
    },
    "requestContext": {
        "routeKey": "$connect",
        "eventType": "CONNECT",
        "extendedRequestId": "BFHPhFe3IAMF95g=",
        "requestTime": "11/Nov/2024:11:35:24 +0000",
        "messageDirection": "IN",
        "stage": "prod",
        "connectedAt": 1731324924553,
        "requestTimeEpoch": 1731324924561,
        "identity": {"sourceIp": "166.90.225.1"},
        "requestId": "BFHPhFe3IAMF95g=",
        "domainName": "asasasas.execute-api.us-east-1.amazonaws.com",
        "connectionId": "BFHPhfCWIAMCKlQ=",
        "apiId": "asasasas",
    },
    "isBase64Encoded": False,
}
AWS_WS_DISCONNECT_EXAMPLE: dict[str, Any] = {
    "headers": {
        "Host": "asasasas.execute-api.us-east-1.amazonaws.com",
        "x-api-key": "",
        "X-Forwarded-For": "",
        "x-restapi": "",
    },
    "multiValueHeaders": {
        "Host": ["asasasas.execute-api.us-east-1.amazonaws.com"],
        "x-api-key": [""],
        "X-Forwarded-For": [""],
        "x-restapi": [""],
    },
    "requestContext": {
        "routeKey": "$disconnect",
        "disconnectStatusCode": 1005,
        "eventType": "DISCONNECT",
        "extendedRequestId": "BFbOeE87IAMF31w=",
        "requestTime": "11/Nov/2024:13:51:49 +0000",
        "messageDirection": "IN",
        "disconnectReason": "Client-side close frame status not set",
        "stage": "prod",
        "connectedAt": 1731332735513,
        "requestTimeEpoch": 1731333109875,
        "identity": {"sourceIp": "166.90.225.1"},
        "requestId": "BFbOeE87IAMF31w=",
        "domainName": "asasasas.execute-api.us-east-1.amazonaws.com",
        "connectionId": "BFaT_fALIAMCKug=",
        "apiId": "asasasas",
    },
    "isBase64Encoded": False,
}
AWS_WS_MESSAGE_EXAMPLE: dict[str, Any] = {
    "requestContext": {
        "routeKey": "chat",
        "messageId": "BFaVtfGSIAMCKug=",
        "eventType": "MESSAGE",
        "extendedRequestId": "BFaVtH2HoAMFZEQ=",
        "requestTime": "11/Nov/2024:13:45:46 +0000",
        "messageDirection": "IN",
        "stage": "prod",
        "connectedAt": 1731332735513,
        "requestTimeEpoch": 1731332746514,
        "identity": {"sourceIp": "166.90.225.1"},
        "requestId": "BFaVtH2HoAMFZEQ=",
        "domainName": "asasasas.execute-api.us-east-1.amazonaws.com",
        "connectionId": "BFaT_fALIAMCKug=",
        "apiId": "asasasas",
    },
    "body": '{"action": "chat", "message": "Hello from client"}',
    "isBase64Encoded": False,
}
AWS_WS_AUTHORIZER_EXAMPLE: dict[str, Any] = {
    "type": "REQUEST",
    "methodArn": "arn:aws:execute-api:us-east-1:533568316194:c5jwxq709g/production/$connect",
    "headers": {"Authorization": "Leo", "Host": "c5jwxq709g.execute-api.us-east-1.amazonaws.com"},
    "multiValueHeaders": {
        "Authorization": ["Leo"],
        "Host": ["c5jwxq709g.execute-api.us-east-1.amazonaws.com"],
    },
    "queryStringParameters": {},
    "multiValueQueryStringParameters": {},
    "stageVariables": {},
    "requestContext": {
        "routeKey": "$connect",
        "eventType": "CONNECT",
        "extendedRequestId": "FDmBIG3EoAMEqYA=",
        "requestTime": "27/Jan/2025:16:39:47 +0000",
        "messageDirection": "IN",
        "stage": "production",
        "connectedAt": 1737995987617,
        "requestTimeEpoch": 1737995987617,
        "identity": {"sourceIp": "93.108.161.96"},
        "requestId": "FDmBIG3EoAMEqYA=",
        "domainName": "c5jwxq709g.execute-api.us-east-1.amazonaws.com",
        "connectionId": "FDmBIeapIAMCIQg=",
        "apiId": "c5jwxq709g",
    },
}

API = ApiInfo(api_id="abcde12345", stage="local")
PEER = WsPeer(
    connection_id="Jx7bXd1kIAMCJ6A=",
    connected_at_ms=1731324924553,
    source_ip="127.0.0.1",
    user_agent=None,
    domain_name="127.0.0.1:8001",
)
AUTHORIZED_PEER = WsPeer(
    connection_id="Jx7bXd1kIAMCJ6A=",
    connected_at_ms=1731324924553,
    source_ip="127.0.0.1",
    user_agent="test-agent",
    domain_name="127.0.0.1:8001",
    authorizer={"principalId": "key-1", "owner": "key-1", "integrationLatency": 3},
)
WS_HEADERS = [("Host", "127.0.0.1:8001"), ("Sec-WebSocket-Key", "abc"), ("X-Forwarded-Proto", "http")]


def _rest_request(**overrides: Any) -> RestRequest:
    fields: dict[str, Any] = {
        "method": "GET",
        "path": "/v1/jobs",
        "headers": (("Host", "127.0.0.1:8000"), ("x-api-key", "secret"), ("User-Agent", "ua")),
        "query": (("status", "queued"), ("status", "running"), ("limit", "5")),
        "body": b"",
        "source_ip": "127.0.0.1",
        "domain_name": "127.0.0.1:8000",
    }
    fields.update(overrides)
    return RestRequest(**fields)


def test_rest_event_has_the_documented_keys_and_parses_with_powertools() -> None:
    event = rest_proxy_event(API, _rest_request(), api_key="secret", api_key_id="key-1", resource_id="abc123")

    APIGatewayProxyEventModel.model_validate(event)
    assert set(event) == set(AWS_REST_PROXY_EXAMPLE)
    assert set(event["requestContext"]) == REST_CONTEXT_KEYS
    assert set(event["requestContext"]["identity"]) == REST_IDENTITY_KEYS
    assert event["resource"] == "/{proxy+}"
    assert event["path"] == event["requestContext"]["path"] == "/v1/jobs"
    assert event["pathParameters"] == {"proxy": "v1/jobs"}
    assert event["requestContext"]["identity"]["apiKeyId"] == "key-1"
    assert event["requestContext"]["identity"]["apiKey"] == "secret"
    assert event["requestContext"]["identity"]["userAgent"] == "ua"
    assert event["body"] is None and event["isBase64Encoded"] is False


def test_rest_event_keeps_the_last_query_value_singly_and_all_of_them_multiply() -> None:
    event = rest_proxy_event(API, _rest_request(), api_key="k", api_key_id="i", resource_id="r")

    assert event["queryStringParameters"] == {"status": "running", "limit": "5"}
    assert event["multiValueQueryStringParameters"] == {"status": ["queued", "running"], "limit": ["5"]}


def test_rest_event_without_a_query_string_has_null_query_maps() -> None:
    event = rest_proxy_event(API, _rest_request(query=()), api_key="k", api_key_id="i", resource_id="r")

    assert event["queryStringParameters"] is None
    assert event["multiValueQueryStringParameters"] is None


def test_headers_group_case_insensitively_under_the_first_spelling() -> None:
    single, multi = fold([("Accept", "a"), ("accept", "b"), ("X-One", "1")], case_insensitive=True)

    assert single == {"Accept": "b", "X-One": "1"}
    assert multi == {"Accept": ["a", "b"], "X-One": ["1"]}


def test_bodies_are_text_when_utf8_and_base64_otherwise() -> None:
    assert encode_body(b"", binary=False) == (None, False)
    assert encode_body('{"a": "é"}'.encode(), binary=False) == ('{"a": "é"}', False)
    raw = b"\x89PNG\xff\x00"
    assert encode_body(raw, binary=False) == (base64.b64encode(raw).decode(), True)
    assert encode_body(b"text", binary=True) == (base64.b64encode(b"text").decode(), True)


def test_ids_and_times_look_like_api_gateways() -> None:
    assert re.fullmatch(r"[A-Za-z0-9_-]{15}=", new_gateway_id())
    assert request_time(1731324924553) == "11/Nov/2024:11:35:24 +0000"
    assert connect_arn(API) == "arn:aws:execute-api:us-east-1:123456789012:abcde12345/local/$connect"


def test_ws_authorizer_event_has_the_recorded_keys() -> None:
    event = ws_authorizer_event(API, PEER, WS_HEADERS, [], request_id="r", epoch_ms=1)

    assert set(event) == set(AWS_WS_AUTHORIZER_EXAMPLE)
    assert set(event["requestContext"]) == set(AWS_WS_AUTHORIZER_EXAMPLE["requestContext"])
    assert event["queryStringParameters"] == {} and event["multiValueQueryStringParameters"] == {}
    assert event["methodArn"] == connect_arn(API)


def test_ws_connect_event_has_the_recorded_keys_and_parses_with_powertools() -> None:
    event = ws_connect_event(API, PEER, WS_HEADERS, [], request_id="r", epoch_ms=PEER.connected_at_ms)

    APIGatewayWebSocketConnectEventModel.model_validate(event)
    assert set(event) == set(AWS_WS_CONNECT_EXAMPLE)
    assert set(event["requestContext"]) == set(AWS_WS_CONNECT_EXAMPLE["requestContext"])


def test_ws_connect_event_carries_the_query_string_and_the_authorizer_context() -> None:
    query = [("token", "t1"), ("token", "t2")]
    event = ws_connect_event(API, AUTHORIZED_PEER, WS_HEADERS, query, request_id="r", epoch_ms=1)

    assert event["queryStringParameters"] == {"token": "t2"}
    assert event["multiValueQueryStringParameters"] == {"token": ["t1", "t2"]}
    assert event["requestContext"]["authorizer"]["owner"] == "key-1"
    assert event["requestContext"]["identity"] == {"sourceIp": "127.0.0.1", "userAgent": "test-agent"}


def test_ws_message_event_has_the_recorded_keys_and_parses_with_powertools() -> None:
    event = ws_message_event(API, PEER, route_key="subscribe", data='{"action": "subscribe"}')

    model = APIGatewayWebSocketMessageEventModel.model_validate(event)
    assert model.request_context.route_key == "subscribe"
    assert set(event) == set(AWS_WS_MESSAGE_EXAMPLE)
    assert set(event["requestContext"]) == set(AWS_WS_MESSAGE_EXAMPLE["requestContext"])
    assert list(event["requestContext"])[:2] == ["routeKey", "messageId"]


def test_ws_binary_message_is_base64() -> None:
    event = ws_message_event(API, PEER, route_key="$default", data=b"\x00\x01")

    assert event["isBase64Encoded"] is True
    assert base64.b64decode(event["body"]) == b"\x00\x01"


def test_ws_disconnect_event_has_the_recorded_keys_and_parses_with_powertools() -> None:
    event = ws_disconnect_event(API, PEER, status_code=1005, reason="Client-side close frame status not set")

    APIGatewayWebSocketDisconnectEventModel.model_validate(event)
    assert set(event) == set(AWS_WS_DISCONNECT_EXAMPLE)
    assert set(event["requestContext"]) == set(AWS_WS_DISCONNECT_EXAMPLE["requestContext"])
    assert set(event["headers"]) == set(AWS_WS_DISCONNECT_EXAMPLE["headers"])


def _policy(effect: str, resource: Any, action: Any = "execute-api:Invoke") -> dict[str, Any]:
    return {
        "Version": "2012-10-17",
        "Statement": [{"Action": action, "Effect": effect, "Resource": resource}],
    }


ARN = "arn:aws:execute-api:us-east-1:123456789012:abcde12345/local/$connect"


def test_an_allow_on_the_method_arn_allows_and_stringifies_the_context() -> None:
    response = {
        "principalId": "user",
        "policyDocument": _policy("Allow", ARN),
        "context": {"owner": "key-1", "n": 3, "admin": False},
    }

    decision = evaluate_authorizer_response(response, ARN, integration_latency_ms=4)

    assert decision.verdict is Verdict.ALLOW
    assert decision.context == {
        "owner": "key-1",
        "n": "3",
        "admin": "false",
        "principalId": "user",
        "integrationLatency": 4,
    }


@pytest.mark.parametrize(
    ("resource", "action"),
    [
        ("arn:aws:execute-api:us-east-1:123456789012:abcde12345/*", "execute-api:Invoke"),
        (["arn:aws:other", "arn:aws:execute-api:*:*:*/local/$connect"], ["execute-api:*"]),
        ("*", "*"),
    ],
)
def test_wildcards_in_resource_and_action_allow(resource: Any, action: Any) -> None:
    response = {"principalId": "u", "policyDocument": _policy("Allow", resource, action)}

    assert evaluate_authorizer_response(response, ARN).verdict is Verdict.ALLOW


def test_an_explicit_deny_wins_over_an_allow() -> None:
    document = {
        "Version": "2012-10-17",
        "Statement": [
            {"Action": "execute-api:Invoke", "Effect": "Allow", "Resource": "*"},
            {"Action": "execute-api:Invoke", "Effect": "Deny", "Resource": ARN},
        ],
    }

    decision = evaluate_authorizer_response({"principalId": "u", "policyDocument": document}, ARN)

    assert decision.verdict is Verdict.DENY


def test_an_allow_for_another_arn_denies() -> None:
    response = {"principalId": "u", "policyDocument": _policy("Allow", ARN.replace("local", "prod"))}

    assert evaluate_authorizer_response(response, ARN).verdict is Verdict.DENY


@pytest.mark.parametrize(
    "response",
    [
        None,
        "Allow",
        {"policyDocument": _policy("Allow", ARN)},
        {"principalId": "u"},
        {"principalId": "u", "policyDocument": _policy("Allow", ARN), "context": {"nested": {"a": 1}}},
    ],
)
def test_unusable_authorizer_responses_are_invalid(response: Any) -> None:
    assert evaluate_authorizer_response(response, ARN).verdict is Verdict.INVALID


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ('{"action": "subscribe", "job_id": "j"}', "subscribe"),
        ('{"action": "dance"}', "$default"),
        ('{"job_id": "j"}', "$default"),
        ('{"action": 7}', "$default"),
        ('{"action": "$connect"}', "$default"),
        ("not json", "$default"),
        ('["action"]', "$default"),
        (b"\x00binary", "$default"),
    ],
)
def test_route_selection_falls_back_to_default(body: str | bytes, expected: str) -> None:
    selector = RouteSelector("$request.body.action")

    assert selector.route_key(body, {"subscribe", "ping", "$default"}) == expected


def test_route_selection_without_a_default_route_selects_nothing() -> None:
    selector = RouteSelector("$request.body.action")

    assert selector.route_key('{"action": "dance"}', {"subscribe"}) is None
    assert selector.route_key('{"action": "subscribe"}', {"subscribe"}) == "subscribe"


def test_route_selection_follows_a_nested_path() -> None:
    selector = RouteSelector("$request.body.meta.kind")

    assert selector.route_key(json.dumps({"meta": {"kind": "ping"}}), {"ping"}) == "ping"


def test_only_body_selection_expressions_are_supported() -> None:
    with pytest.raises(ValueError, match="route selection"):
        RouteSelector("$request.header.x")


def test_proxy_response_merges_headers_with_multi_values_winning() -> None:
    response = proxy_response_to_http(
        {
            "statusCode": 201,
            "headers": {"Location": "/v1/jobs/1", "Set-Cookie": "lost=1", "Content-Length": "999"},
            "multiValueHeaders": {"set-cookie": ["a=1", "b=2"]},
            "body": "{}",
            "isBase64Encoded": False,
        }
    )

    assert response.status == 201
    assert response.headers["Location"] == "/v1/jobs/1"
    assert response.headers.getall("Set-Cookie") == ["a=1", "b=2"]
    assert response.headers["Content-Type"] == "application/json"
    assert response.body == b"{}"


def test_proxy_response_decodes_a_base64_body() -> None:
    response = proxy_response_to_http(
        {
            "statusCode": 200,
            "headers": {"Content-Type": "image/png"},
            "body": base64.b64encode(b"\x89PNG").decode(),
            "isBase64Encoded": True,
        }
    )

    assert response.body == b"\x89PNG"
    assert response.headers["Content-Type"] == "image/png"


@pytest.mark.parametrize(
    "result",
    [
        None,
        {"body": "x"},
        {"statusCode": "two hundred"},
        {"statusCode": 200, "body": {"not": "a string"}},
        {"statusCode": 200, "extra": 1},
        {"statusCode": 200, "body": "%%%", "isBase64Encoded": True},
        {"statusCode": 200, "headers": {"X": None}},
    ],
)
def test_malformed_proxy_responses_are_refused(result: Any) -> None:
    with pytest.raises(MalformedResponseError):
        proxy_response_to_http(result)
