"""The WebSocket half over real sockets on 127.0.0.1: authorizer, routes, @connections through boto3."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
import requests
import websocket
from aws_lambda_powertools.utilities.parser.models import (
    APIGatewayWebSocketConnectEventModel,
    APIGatewayWebSocketDisconnectEventModel,
    APIGatewayWebSocketMessageEventModel,
)
from botocore.config import Config

from local.apigw import ApiGatewayEmulator, EmulatorUrls, WebSocketApiEmulator
from local.apigw.mock import MockIntegration
from shared.names import WS_CONNECT_MOCK_TEMPLATES, WS_CONNECT_TEMPLATE_SELECTION
from tests.unit.test_apigw_events import (
    AWS_WS_AUTHORIZER_EXAMPLE,
    AWS_WS_CONNECT_EXAMPLE,
    AWS_WS_DISCONNECT_EXAMPLE,
    AWS_WS_MESSAGE_EXAMPLE,
)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

TIMEOUT = 5


class Route:
    """A Lambda handler that records its events and answers what it is told to."""

    def __init__(self, answer: Callable[[dict[str, Any]], Any] | None = None) -> None:
        self.events: list[dict[str, Any]] = []
        self.answer = answer or (lambda event: {"statusCode": 200})

    def __call__(self, event: dict[str, Any], context: Any) -> Any:
        self.events.append(event)
        return self.answer(event)


def allow(context: dict[str, Any] | None = None) -> Callable[[dict[str, Any], Any], Any]:
    def authorizer(event: dict[str, Any], _context: Any) -> dict[str, Any]:
        token = (event["queryStringParameters"] or {}).get("token")
        if token != "good":
            raise Exception("Unauthorized")
        statement = {"Action": "execute-api:Invoke", "Effect": "Allow", "Resource": event["methodArn"]}
        return {
            "principalId": "key-1",
            "policyDocument": {"Version": "2012-10-17", "Statement": [statement]},
            "context": context or {"owner": "key-1"},
        }

    return authorizer


def wait_until(predicate: Callable[[], bool], timeout: float = TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.01)


def management_client(urls: EmulatorUrls) -> Any:
    return boto3.client(
        "apigatewaymanagementapi",
        endpoint_url=urls.management_url,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(retries={"max_attempts": 1}, connect_timeout=TIMEOUT, read_timeout=TIMEOUT),
    )


class WsApi:
    """An emulated WebSocket API with recording routes, running for one test."""

    def __init__(self, authorizer: Any = None, with_default: bool = True, **options: Any) -> None:
        given: dict[str, Route] = options.pop("routes", {})
        self.connect = given.get("$connect", Route())
        self.disconnect = given.get("$disconnect", Route())
        self.subscribe = given.get("subscribe", Route())
        self.default = given.get("$default", Route())
        self.authorizer_events: list[dict[str, Any]] = []
        routes: dict[str, Any] = {
            "$connect": self.connect,
            "$disconnect": self.disconnect,
            "subscribe": self.subscribe,
        }
        if with_default:
            routes["$default"] = self.default
        recording_authorizer = None
        if authorizer is not None:

            def recording_authorizer(event: dict[str, Any], context: Any) -> Any:
                self.authorizer_events.append(event)
                return authorizer(event, context)

        self.api = WebSocketApiEmulator(routes, authorizer=recording_authorizer, **options)
        self.emulator = ApiGatewayEmulator(websocket=self.api)
        self.urls = self.emulator.start()
        self.client = management_client(self.urls)

    def open(self, query: str = "?token=good", **options: Any) -> tuple[websocket.WebSocket, str]:
        ws = websocket.create_connection(f"{self.urls.websocket_url}{query}", timeout=TIMEOUT, **options)
        connection_id = self.connect.events[-1]["requestContext"]["connectionId"]
        wait_until(lambda: connection_id in self.api.connection_ids())
        return ws, connection_id

    def refused_status(self, query: str = "?token=good") -> int:
        with pytest.raises(websocket.WebSocketBadStatusException) as refused:
            websocket.create_connection(f"{self.urls.websocket_url}{query}", timeout=TIMEOUT)
        return int(refused.value.status_code)


@pytest.fixture
def ws_api() -> Iterator[WsApi]:
    api = WsApi(authorizer=allow())
    yield api
    api.emulator.stop()


def test_connect_runs_the_authorizer_then_connect_with_its_context(ws_api: WsApi) -> None:
    ws, connection_id = ws_api.open("?token=good", header={"User-Agent": "client/1"})
    ws.close()

    (auth_event,) = ws_api.authorizer_events
    assert set(auth_event) == set(AWS_WS_AUTHORIZER_EXAMPLE)
    assert set(auth_event["requestContext"]) == set(AWS_WS_AUTHORIZER_EXAMPLE["requestContext"])
    assert auth_event["type"] == "REQUEST"
    assert auth_event["methodArn"].endswith(f"/{ws_api.api.api.stage}/$connect")
    assert auth_event["requestContext"]["connectionId"] == connection_id

    (event,) = ws_api.connect.events
    APIGatewayWebSocketConnectEventModel.model_validate(event)
    assert set(event) == set(AWS_WS_CONNECT_EXAMPLE) | {
        "queryStringParameters",
        "multiValueQueryStringParameters",
    }
    context = event["requestContext"]
    assert set(context) == set(AWS_WS_CONNECT_EXAMPLE["requestContext"]) | {"authorizer"}
    assert event["queryStringParameters"] == {"token": "good"}
    assert context["authorizer"]["owner"] == "key-1"
    assert context["authorizer"]["principalId"] == "key-1"
    assert context["identity"] == {"sourceIp": "127.0.0.1", "userAgent": "client/1"}
    assert context["connectionId"] == connection_id
    assert len(connection_id) == 16 and connection_id.endswith("=")


def test_an_authorizer_that_raises_unauthorized_refuses_with_401(ws_api: WsApi) -> None:
    assert ws_api.refused_status("?token=bad") == 401
    assert ws_api.connect.events == []
    assert ws_api.api.connection_ids() == []


def test_an_explicit_deny_refuses_with_403() -> None:
    def deny(event: dict[str, Any], context: Any) -> dict[str, Any]:
        statement = {"Action": "execute-api:Invoke", "Effect": "Deny", "Resource": event["methodArn"]}
        return {"principalId": "x", "policyDocument": {"Version": "2012-10-17", "Statement": [statement]}}

    api = WsApi(authorizer=deny)
    try:
        assert api.refused_status() == 403
        assert api.connect.events == []
    finally:
        api.emulator.stop()


def test_an_authorizer_that_fails_otherwise_refuses_with_500() -> None:
    def broken(event: dict[str, Any], context: Any) -> dict[str, Any]:
        raise KeyError("token")

    api = WsApi(authorizer=broken)
    try:
        assert api.refused_status() == 500
        assert api.connect.events == []
    finally:
        api.emulator.stop()


def test_a_missing_identity_source_refuses_with_401_before_the_authorizer() -> None:
    api = WsApi(authorizer=allow(), identity_sources=["route.request.querystring.token"])
    try:
        assert api.refused_status(query="") == 401
        assert api.authorizer_events == []
    finally:
        api.emulator.stop()


@pytest.mark.parametrize(("answer", "status"), [({"statusCode": 403}, 403), ({"body": "no status"}, 502)])
def test_a_connect_handler_that_does_not_answer_2xx_refuses_the_handshake(
    answer: dict[str, Any], status: int
) -> None:
    api = WsApi(routes={"$connect": Route(lambda event: answer)})
    try:
        assert api.refused_status() == status
        assert api.api.connection_ids() == []
    finally:
        api.emulator.stop()


def test_a_mock_connect_lets_in_what_the_authorizer_allowed_and_no_function_runs_on_connect_or_close() -> (
    None
):
    """As deployed: $connect is the authorizer and a mock integration, and there is no $disconnect route."""
    subscribe = Route()
    api = WebSocketApiEmulator(
        {
            "$connect": MockIntegration(WS_CONNECT_MOCK_TEMPLATES, WS_CONNECT_TEMPLATE_SELECTION),
            "subscribe": subscribe,
        },
        authorizer=allow(),
        identity_sources=["route.request.querystring.token"],
    )
    emulator = ApiGatewayEmulator(websocket=api)
    urls = emulator.start()
    try:
        ws = websocket.create_connection(f"{urls.websocket_url}?token=good", timeout=TIMEOUT)
        ws.send(json.dumps({"action": "subscribe", "job_id": "j-1"}))
        wait_until(lambda: len(subscribe.events) == 1)
        (connection_id,) = api.connection_ids()
        ws.close()
        wait_until(lambda: api.connection_ids() == [])
        # The authorizer's context reaches the routes with no $connect function in between.
        assert subscribe.events[0]["requestContext"]["authorizer"]["owner"] == "key-1"
        assert subscribe.events[0]["requestContext"]["connectionId"] == connection_id
        with pytest.raises(websocket.WebSocketBadStatusException) as refused:
            websocket.create_connection(f"{urls.websocket_url}", timeout=TIMEOUT)
        assert refused.value.status_code == 401, "the mock lets in only what the authorizer allowed"
    finally:
        emulator.stop()


@pytest.mark.parametrize(
    ("templates", "status"),
    [
        ({"$default": '{"statusCode": 403}'}, 403),
        # API Gateway: "statusCode should be an integer which defined in request template".
        ({"$default": '{"status": 200}'}, 500),
        ({"application/json": '{"statusCode": 200}'}, 500),
    ],
)
def test_a_mock_connect_whose_template_gives_no_2xx_status_refuses_the_handshake(
    templates: dict[str, str], status: int
) -> None:
    api = WsApi(routes={"$connect": MockIntegration(templates, WS_CONNECT_TEMPLATE_SELECTION)})  # type: ignore[dict-item]
    try:
        assert api.refused_status() == status
        assert api.api.connection_ids() == []
    finally:
        api.emulator.stop()


def test_messages_are_routed_on_their_action(ws_api: WsApi) -> None:
    ws, connection_id = ws_api.open()
    ws.send(json.dumps({"action": "subscribe", "job_id": "j-1"}))
    ws.send(json.dumps({"action": "dance"}))
    ws.send("not json")
    wait_until(lambda: len(ws_api.subscribe.events) == 1 and len(ws_api.default.events) == 2)
    ws.close()

    (event,) = ws_api.subscribe.events
    APIGatewayWebSocketMessageEventModel.model_validate(event)
    context = event["requestContext"]
    assert set(event) == set(AWS_WS_MESSAGE_EXAMPLE)
    assert set(context) == set(AWS_WS_MESSAGE_EXAMPLE["requestContext"]) | {"authorizer"}
    assert context["routeKey"] == "subscribe"
    assert context["connectionId"] == connection_id
    assert context["authorizer"]["owner"] == "key-1"
    assert json.loads(event["body"]) == {"action": "subscribe", "job_id": "j-1"}
    assert [e["requestContext"]["routeKey"] for e in ws_api.default.events] == ["$default", "$default"]
    assert ws_api.default.events[1]["body"] == "not json"


def test_without_a_default_route_an_unmatched_message_is_answered_forbidden() -> None:
    api = WsApi(with_default=False)
    try:
        ws, connection_id = api.open()
        ws.send(json.dumps({"action": "dance"}))
        answer = json.loads(ws.recv())
        ws.close()
    finally:
        api.emulator.stop()

    assert answer["message"] == "Forbidden"
    assert answer["connectionId"] == connection_id
    assert answer["requestId"]


def test_a_route_handler_that_raises_is_answered_internal_server_error() -> None:
    def broken(event: dict[str, Any]) -> Any:
        raise RuntimeError("boom")

    api = WsApi(routes={"subscribe": Route(broken)})
    try:
        ws, connection_id = api.open()
        ws.send(json.dumps({"action": "subscribe"}))
        answer = json.loads(ws.recv())
        ws.close()
    finally:
        api.emulator.stop()

    assert answer["message"] == "Internal server error"
    assert answer["connectionId"] == connection_id


def test_a_route_handlers_response_body_is_not_sent_to_the_client() -> None:
    api = WsApi(routes={"subscribe": Route(lambda event: {"statusCode": 200, "body": "not for the client"})})
    try:
        ws, connection_id = api.open()
        ws.send(json.dumps({"action": "subscribe"}))
        wait_until(lambda: len(api.subscribe.events) == 1)
        api.client.post_to_connection(ConnectionId=connection_id, Data=b"marker")
        first = ws.recv()
        ws.close()
    finally:
        api.emulator.stop()

    assert first == "marker"


def test_messages_of_one_connection_reach_their_handler_in_order() -> None:
    def slow_on_even(event: dict[str, Any]) -> dict[str, Any]:
        if json.loads(event["body"])["n"] % 2 == 0:
            time.sleep(0.02)
        return {"statusCode": 200}

    api = WsApi(routes={"subscribe": Route(slow_on_even)})
    try:
        ws, _ = api.open()
        for n in range(20):
            ws.send(json.dumps({"action": "subscribe", "n": n}))
        wait_until(lambda: len(api.subscribe.events) == 20)
        ws.close()
    finally:
        api.emulator.stop()

    assert [json.loads(e["body"])["n"] for e in api.subscribe.events] == list(range(20))


def test_a_client_close_gives_disconnect_with_its_status_and_reason(ws_api: WsApi) -> None:
    ws, connection_id = ws_api.open()
    ws.close(status=1000, reason=b"bye")
    wait_until(lambda: len(ws_api.disconnect.events) == 1)

    (event,) = ws_api.disconnect.events
    APIGatewayWebSocketDisconnectEventModel.model_validate(event)
    context = event["requestContext"]
    assert set(event) == set(AWS_WS_DISCONNECT_EXAMPLE)
    assert set(context) == set(AWS_WS_DISCONNECT_EXAMPLE["requestContext"]) | {"authorizer"}
    assert context["connectionId"] == connection_id
    assert context["disconnectStatusCode"] == 1000
    assert context["disconnectReason"] == "bye"
    assert context["authorizer"]["owner"] == "key-1"
    assert ws_api.api.connection_ids() == []


def test_post_to_connection_delivers_a_text_frame(ws_api: WsApi) -> None:
    ws, connection_id = ws_api.open()
    ws_api.client.post_to_connection(ConnectionId=connection_id, Data=b'{"type":"job.snapshot"}')
    ws_api.client.post_to_connection(ConnectionId=connection_id, Data='{"type":"job.status"}')

    first, second = ws.recv_data(), ws.recv_data()
    ws.close()
    assert first == (websocket.ABNF.OPCODE_TEXT, b'{"type":"job.snapshot"}')
    assert second == (websocket.ABNF.OPCODE_TEXT, b'{"type":"job.status"}')


def test_get_connection_describes_the_connection(ws_api: WsApi) -> None:
    ws, connection_id = ws_api.open(header={"User-Agent": "client/1"})
    described = ws_api.client.get_connection(ConnectionId=connection_id)
    ws.close()

    assert described["Identity"] == {"SourceIp": "127.0.0.1", "UserAgent": "client/1"}
    connected_ms = ws_api.connect.events[0]["requestContext"]["connectedAt"]
    assert abs(described["ConnectedAt"].timestamp() * 1000 - connected_ms) < 2
    assert described["LastActiveAt"] >= described["ConnectedAt"]


def test_delete_connection_closes_the_socket_and_disconnects(ws_api: WsApi) -> None:
    ws, connection_id = ws_api.open()
    ws_api.client.delete_connection(ConnectionId=connection_id)

    frame = ws.recv_data_frame(control_frame=True)[1]
    assert frame.opcode == websocket.ABNF.OPCODE_CLOSE
    assert int.from_bytes(frame.data[:2], "big") == 1000
    ws.shutdown()
    wait_until(lambda: len(ws_api.disconnect.events) == 1)
    context = ws_api.disconnect.events[0]["requestContext"]
    assert context["disconnectStatusCode"] == 1000
    assert context["connectionId"] == connection_id
    with pytest.raises(ws_api.client.exceptions.GoneException):
        ws_api.client.post_to_connection(ConnectionId=connection_id, Data=b"x")


def test_a_closed_or_unknown_connection_is_gone(ws_api: WsApi) -> None:
    ws, connection_id = ws_api.open()
    ws.close()
    wait_until(lambda: len(ws_api.disconnect.events) == 1)

    client = ws_api.client
    with pytest.raises(client.exceptions.GoneException):
        client.post_to_connection(ConnectionId=connection_id, Data=b"late")
    with pytest.raises(client.exceptions.GoneException):
        client.get_connection(ConnectionId=connection_id)
    with pytest.raises(client.exceptions.GoneException):
        client.delete_connection(ConnectionId=connection_id)
    with pytest.raises(client.exceptions.GoneException) as gone:
        client.post_to_connection(ConnectionId="NoSuchConnId0A=", Data=b"x")
    assert gone.value.response["ResponseMetadata"]["HTTPStatusCode"] == 410


def test_a_route_handler_can_post_to_its_own_connection() -> None:
    posted = threading.Event()
    holder: dict[str, Any] = {}

    def snapshot(event: dict[str, Any]) -> dict[str, Any]:
        connection_id = event["requestContext"]["connectionId"]
        holder["client"].post_to_connection(ConnectionId=connection_id, Data=b'{"type":"job.snapshot"}')
        posted.set()
        return {"statusCode": 200}

    api = WsApi(routes={"subscribe": Route(snapshot)})
    holder["client"] = management_client(api.urls)
    try:
        ws, _ = api.open()
        ws.send(json.dumps({"action": "subscribe", "job_id": "j-1"}))
        assert json.loads(ws.recv()) == {"type": "job.snapshot"}
        assert posted.wait(TIMEOUT)
        ws.close()
    finally:
        api.emulator.stop()


def test_a_post_over_128_kb_is_refused(ws_api: WsApi) -> None:
    ws, connection_id = ws_api.open()
    with pytest.raises(ws_api.client.exceptions.PayloadTooLargeException):
        ws_api.client.post_to_connection(ConnectionId=connection_id, Data=b"x" * (128 * 1024 + 1))
    ws.close()


def test_a_message_over_128_kb_closes_the_connection_with_1009(ws_api: WsApi) -> None:
    ws, _ = ws_api.open()
    ws.send("x" * (128 * 1024 + 1))
    wait_until(lambda: len(ws_api.disconnect.events) == 1)
    ws.close()

    assert ws_api.disconnect.events[0]["requestContext"]["disconnectStatusCode"] == 1009
    assert ws_api.default.events == []


def test_stopping_the_emulator_disconnects_open_connections() -> None:
    api = WsApi()
    ws, connection_id = api.open()
    api.emulator.stop()

    (event,) = api.disconnect.events
    assert event["requestContext"]["connectionId"] == connection_id
    assert event["requestContext"]["disconnectStatusCode"] == 1001
    ws.close()


def test_a_plain_http_request_to_the_websocket_endpoint_needs_an_upgrade(ws_api: WsApi) -> None:
    url = str(ws_api.urls.websocket_url).replace("ws://", "http://", 1)

    assert requests.get(url, timeout=TIMEOUT).status_code == 426
