"""The local account's identities: one per process of the service, holding its role's policies from the
template, plus the harness's own unrestricted one; and moto served behind the IAM guard."""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import boto3
from moto.moto_server.threaded_moto_server import ThreadedMotoServer
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from werkzeug.serving import make_server

from local.apigw.connections import Refusal
from local.iam.calls import Arns
from local.iam.guard import Credential, IamGuard, Identities
from local.iam.policy import Principal, statements_of
from local.iam.template import LocalAccount, Resolver, process_roles, role_policies, websocket_stage

# The harness's key (it creates the tables and tests inspect them): the account's administrator.
HARNESS_KEY = "local"


def _new_credential(principal: Principal) -> Credential:
    key = "AKIA" + "".join(secrets.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567") for _ in range(16))
    return Credential(key, secrets.token_urlsafe(30), principal)


@dataclass
class LocalIam:
    account: LocalAccount
    identities: Identities
    by_process: Mapping[str, Credential]
    websocket_stage: str

    @classmethod
    def from_template(cls, template: Mapping[str, Any], account: LocalAccount) -> LocalIam:
        resolver = Resolver(template, account)
        identities = Identities()
        identities.add(
            Credential(
                HARNESS_KEY,
                HARNESS_KEY,
                Principal("harness", f"arn:aws:iam::{account.account_id}:root", (), unrestricted=True),
            )
        )
        by_process = {}
        for process, role_id in process_roles(template).items():
            principal = Principal(
                process,
                f"arn:aws:sts::{account.account_id}:assumed-role/{role_id}/{process}",
                statements_of(role_policies(template, role_id, resolver)),
            )
            by_process[process] = _new_credential(principal)
            identities.add(by_process[process])
        return cls(account, identities, by_process, websocket_stage(template))

    @property
    def arns(self) -> Arns:
        return Arns(self.account.account_id, self.account.region)

    def env(self, process: str) -> dict[str, str]:
        credential = self.by_process[process]
        return {
            "AWS_ACCESS_KEY_ID": credential.access_key_id,
            "AWS_SECRET_ACCESS_KEY": credential.secret_access_key,
        }

    def session(self, process: str) -> boto3.session.Session:
        credential = self.by_process[process]
        return boto3.session.Session(
            aws_access_key_id=credential.access_key_id,
            aws_secret_access_key=credential.secret_access_key,
            region_name=self.account.region,
        )

    def principal(self, process: str) -> Principal:
        return self.by_process[process].principal

    def management_access(self, method: str, connection_id: str, authorization: str) -> Refusal | None:
        """IAM on the @connections API: ``execute-api:ManageConnections`` on this connection."""
        if not authorization:
            return Refusal("MissingAuthenticationTokenException", "Missing Authentication Token")
        credential = self.identities.of_authorization(authorization)
        if credential is None:
            return Refusal(
                "UnrecognizedClientException", "The security token included in the request is invalid."
            )
        a = self.account
        resource = (
            f"arn:aws:execute-api:{a.region}:{a.account_id}:{a.websocket_api_id}/{self.websocket_stage}"
            f"/{method}/@connections/{connection_id}"
        )
        if credential.principal.allows("execute-api:ManageConnections", resource):
            return None
        return Refusal(
            "AccessDeniedException",
            f"User: {credential.principal.arn} is not authorized to perform: execute-api:ManageConnections "
            f"on resource: {resource}",
        )


class GuardedMotoServer(ThreadedMotoServer):
    """moto in server mode, every request passing the IAM guard first."""

    def __init__(self, iam: LocalIam, ip_address: str, port: int) -> None:
        super().__init__(ip_address=ip_address, port=port, verbose=False)
        self._iam = iam

    def _server_entry(self) -> None:
        app = IamGuard(DomainDispatcherApplication(create_backend_app), self._iam.identities, self._iam.arns)
        self._server = make_server(
            self._ip_address, self._port, app, True, request_handler=MotoRequestHandler
        )
        self._server_ready_event.set()
        self._server.serve_forever()
