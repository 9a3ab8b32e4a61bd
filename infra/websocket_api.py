"""The WebSocket API: a token authorizer on ``$connect`` (with a mock integration: no function runs
there), no ``$disconnect`` route, and one function behind the client actions and ``$default``."""

from __future__ import annotations

import json

import jsii
from aws_cdk import RemovalPolicy
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_apigatewayv2 as apigwv2
from aws_cdk import aws_apigatewayv2_authorizers as authorizers
from aws_cdk import aws_apigatewayv2_integrations as integrations
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from constructs import Construct

from infra.config import ServiceConfig
from infra.function import ServiceFunction
from shared.names import (
    WS_ACTIONS,
    WS_CONNECT_MOCK_TEMPLATES,
    WS_CONNECT_TEMPLATE_SELECTION,
    WS_ROUTE_SELECTION_EXPRESSION,
    WS_TOKEN_QUERY_PARAMETER,
)

# One compact line per route run (the route key tells a connect, a message and a disconnect apart):
# every line is billed as logs, so short names, no spaces, the time as epoch milliseconds.
_ACCESS_LOG_FORMAT = json.dumps(
    {
        "requestId": "$context.requestId",
        "time": "$context.requestTimeEpoch",
        "ip": "$context.identity.sourceIp",
        "route": "$context.routeKey",
        "connectionId": "$context.connectionId",
        "status": "$context.status",
        "error": "$context.error.message",
        "authorizerError": "$context.authorizer.error",
        "integrationError": "$context.integrationErrorMessage",
    },
    separators=(",", ":"),
)


@jsii.implements(apigwv2.IAccessLogSettings)
class _AccessLogSettings:
    def __init__(self, log_group: logs.ILogGroup) -> None:
        self._destination = apigwv2.LogGroupLogDestination(log_group)

    @property
    def destination(self) -> apigwv2.IAccessLogDestination:
        return self._destination

    @property
    def format(self) -> apigw.AccessLogFormat:
        return apigw.AccessLogFormat.custom(_ACCESS_LOG_FORMAT)


class WebSocketApi(Construct):
    """Clients connect with ``?token=``, then subscribe to jobs; the service posts to ``@connections``."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: ServiceConfig,
        authorizer: ServiceFunction,
        handler: ServiceFunction,
    ) -> None:
        super().__init__(scope, construct_id)
        token_authorizer = authorizers.WebSocketLambdaAuthorizer(
            "TokenAuthorizer",
            authorizer.function,
            identity_source=[f"route.request.querystring.{WS_TOKEN_QUERY_PARAMETER}"],
        )
        routes = integrations.WebSocketLambdaIntegration("Routes", handler.function)
        # The authorizer alone decides who connects and hands the owner to every route; nothing is
        # stored per connection, so a function on $connect (or $disconnect) would be paid for nothing.
        accept = integrations.WebSocketMockIntegration(
            "Accept",
            request_templates=WS_CONNECT_MOCK_TEMPLATES,
            template_selection_expression=WS_CONNECT_TEMPLATE_SELECTION,
        )
        self.api = apigwv2.WebSocketApi(
            self,
            "Api",
            description="comfy-api-service job events",
            route_selection_expression=WS_ROUTE_SELECTION_EXPRESSION,
            connect_route_options=apigwv2.WebSocketRouteOptions(
                integration=accept, authorizer=token_authorizer
            ),
            default_route_options=apigwv2.WebSocketRouteOptions(integration=routes),
        )
        # Only $connect can carry an authorizer; the rest run on the connection it let in.
        self.unauthorized_routes: list[apigwv2.WebSocketRoute] = [
            self.api.add_route(action, integration=routes) for action in WS_ACTIONS
        ]
        default = self.api.node.find_child("$default-Route")
        assert isinstance(default, apigwv2.WebSocketRoute)
        self.unauthorized_routes.append(default)

        self.access_logs = logs.LogGroup(
            self, "AccessLogs", retention=config.log_retention, removal_policy=RemovalPolicy.DESTROY
        )
        self.stage = apigwv2.WebSocketStage(
            self,
            "Stage",
            web_socket_api=self.api,
            stage_name=config.stage,
            auto_deploy=True,
            throttle=apigwv2.ThrottleSettings(
                rate_limit=config.websocket_throttle.rate_limit,
                burst_limit=config.websocket_throttle.burst_limit,
            ),
            access_log_settings=_AccessLogSettings(self.access_logs),
        )

    @property
    def url(self) -> str:
        """``wss://.../<stage>``: where clients connect."""
        return self.stage.url

    @property
    def management_url(self) -> str:
        """``https://.../<stage>``: the ``@connections`` endpoint the service posts to."""
        return self.stage.callback_url

    def grant_post(self, grantee: iam.IGrantable) -> None:
        """``execute-api:ManageConnections`` on this stage's connections, for a process that posts events."""
        self.stage.grant_management_api_access(grantee)
