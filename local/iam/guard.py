"""IAM in front of moto: every request is authenticated by its access key and authorized by that
principal's policies, before moto serves it, with the errors each service answers in AWS.

moto's own IAM emulation checks actions but not DynamoDB resources or condition keys, so this evaluates
each call itself (``local.iam.calls`` says what a request asks for, ``local.iam.policy`` decides).
Presigned URLs are held to the principal that signed them and to their expiry; a form upload to its
signed policy. Signatures of header-signed requests are not recomputed: a principal is its access key.
"""

from __future__ import annotations

import io
import json
import logging
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs
from xml.sax.saxutils import escape

from werkzeug.formparser import parse_form_data

from local.iam.calls import (
    Arns,
    Call,
    HttpRequest,
    dynamodb_calls,
    events_calls,
    s3_calls,
    split_s3_path,
    sqs_calls,
)
from local.iam.policy import Principal
from local.iam.post_policy import PolicyRefused, check_post

logger = logging.getLogger(__name__)

StartResponse = Callable[..., Any]
WsgiApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


@dataclass(frozen=True)
class Credential:
    access_key_id: str
    secret_access_key: str
    principal: Principal


class Identities:
    """Access keys and the principals they sign as; also the @connections emulator's source of truth."""

    def __init__(self) -> None:
        self._by_key: dict[str, Credential] = {}

    def add(self, credential: Credential) -> None:
        self._by_key[credential.access_key_id] = credential

    def get(self, access_key_id: str) -> Credential | None:
        return self._by_key.get(access_key_id)

    def of_authorization(self, authorization: str) -> Credential | None:
        """The credential an ``Authorization: AWS4-HMAC-SHA256 Credential=KEY/...`` header names."""
        return self.get(_credential_scope(authorization)[0])


def _credential_scope(authorization: str) -> list[str]:
    scope = authorization.partition("Credential=")[2].partition(",")[0]
    return scope.split("/") if scope.count("/") == 4 else ["", "", "", "", ""]


class Denied(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


def _json_error(status: int, code: str, message: str, query_code: str) -> tuple[int, dict[str, str], bytes]:
    body = json.dumps({"__type": f"com.amazon.coral.service#{code}", "message": message}).encode()
    headers = {"Content-Type": "application/x-amz-json-1.0", "x-amzn-query-error": f"{query_code};Sender"}
    return status, headers, body


def _error(service: str, method: str, denied: Denied) -> tuple[int, dict[str, str], bytes]:
    if service in {"dynamodb", "events"}:
        code = "AccessDeniedException" if denied.code == "AccessDenied" else "UnrecognizedClientException"
        return _json_error(400, code, str(denied), code)
    if service == "sqs":
        code = "AccessDeniedException" if denied.code == "AccessDenied" else "InvalidClientTokenId"
        return _json_error(
            denied.status, code, str(denied), "AccessDenied" if code.startswith("Access") else code
        )
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Error><Code>{denied.code}</Code><Message>{escape(str(denied))}</Message>"
        f"<RequestId>{uuid.uuid4().hex[:16].upper()}</RequestId></Error>"
    ).encode()
    return denied.status, {"Content-Type": "application/xml"}, b"" if method == "HEAD" else body


def _headers(environ: dict[str, Any]) -> dict[str, str]:
    headers = {k[5:].replace("_", "-").lower(): v for k, v in environ.items() if k.startswith("HTTP_")}
    for name in ("CONTENT_TYPE", "CONTENT_LENGTH"):
        if environ.get(name):
            headers[name.replace("_", "-").lower()] = environ[name]
    return headers


def _service(headers: dict[str, str], credential_scope: list[str]) -> str:
    if credential_scope[3]:
        return credential_scope[3]
    target = headers.get("x-amz-target", "")
    return "dynamodb" if target.startswith("DynamoDB") else "sqs" if target.startswith("AmazonSQS") else "s3"


class IamGuard:
    """WSGI middleware: authenticate, authorize every call a request makes, then let moto serve it."""

    def __init__(self, app: WsgiApp, identities: Identities, arns: Arns) -> None:
        self._app = app
        self._identities = identities
        self._arns = arns

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "").encode("latin-1").decode("utf-8", "replace")
        if path.startswith("/moto-api") or environ["REQUEST_METHOD"] == "OPTIONS":
            return self._app(environ, start_response)
        body = b""
        if environ.get("CONTENT_LENGTH"):  # read once here, and again by moto from a copy
            body = environ["wsgi.input"].read(int(environ["CONTENT_LENGTH"]))
            environ["wsgi.input"] = io.BytesIO(body)
        headers = _headers(environ)
        query = parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True)
        form, file_size = self._form(environ, body, headers)
        request = HttpRequest(environ["REQUEST_METHOD"], path, query, headers, body, form)
        scope = _credential_scope(headers.get("authorization", ""))
        if not scope[0]:
            scope = (query.get("X-Amz-Credential", [""])[0] or form.get("x-amz-credential", "")).split("/")
            scope += [""] * (5 - len(scope))
        service = _service(headers, scope)
        try:
            principal = self._authenticate(request, scope[0], form, file_size)
            # The harness may call anything, moto's other services (API Gateway's keys) included.
            calls = [] if principal.unrestricted else self._calls(service, request)
            for call in calls:
                if not principal.allows(call.action, call.resource, call.context):
                    raise Denied(
                        403,
                        "AccessDenied",
                        f"User: {principal.arn} is not authorized to perform: {call.action} on resource: "
                        f"{call.resource} because no identity-based policy allows the {call.action} action",
                    )
        except Denied as denied:
            logger.info("IAM refused %s %s: %s", request.method, path, denied)
            status, response_headers, response_body = _error(service, request.method, denied)
            start_response(f"{status} {denied.code}", list(response_headers.items()))
            return [response_body]
        if environ.get("CONTENT_LENGTH"):
            environ["wsgi.input"] = io.BytesIO(body)
        if (
            service == "s3"
            and any(c.action == "s3:GetObject" for c in calls)
            and request.method in {"GET", "HEAD"}
        ):
            return self._hide_missing_objects(environ, start_response, principal, request)
        return self._app(environ, start_response)

    def _form(
        self, environ: dict[str, Any], body: bytes, headers: dict[str, str]
    ) -> tuple[dict[str, str], int]:
        if environ["REQUEST_METHOD"] != "POST" or not headers.get("content-type", "").startswith(
            "multipart/form-data"
        ):
            return {}, 0
        copy = {**environ, "wsgi.input": io.BytesIO(body)}
        _, form, files = parse_form_data(copy)
        upload = files.get("file")
        size = len(upload.read()) if upload is not None else 0
        return {k: v for k, v in form.items()}, size

    def _authenticate(
        self, request: HttpRequest, access_key_id: str, form: dict[str, str], file_size: int
    ) -> Principal:
        if not access_key_id:
            raise Denied(403, "AccessDenied", "Anonymous access is not allowed: the request is not signed")
        credential = self._identities.get(access_key_id)
        if credential is None:
            raise Denied(
                403, "InvalidAccessKeyId", f"The AWS access key id {access_key_id} is not known here"
            )
        if "X-Amz-Credential" in request.query:
            try:
                signed = datetime.strptime(request.query["X-Amz-Date"][0], "%Y%m%dT%H%M%SZ")
                lifetime = int(request.query["X-Amz-Expires"][0])
            except (KeyError, ValueError):
                message = "X-Amz-Date or X-Amz-Expires is malformed"
                raise Denied(400, "AuthorizationQueryParametersError", message) from None
            if time.time() > signed.replace(tzinfo=UTC).timestamp() + lifetime:
                raise Denied(403, "AccessDenied", "Request has expired")
        if form.get("policy"):
            bucket, _ = split_s3_path(request.path)
            try:
                check_post(form, file_size, bucket, credential.secret_access_key)
            except PolicyRefused as refused:
                raise Denied(refused.status, refused.code, str(refused)) from None
        return credential.principal

    def _calls(self, service: str, request: HttpRequest) -> list[Call]:
        if service == "dynamodb":
            return dynamodb_calls(request, self._arns)
        if service == "sqs":
            return sqs_calls(request, self._arns)
        if service == "s3":
            return s3_calls(request)
        if service == "events":
            return events_calls(request, self._arns)
        raise Denied(403, "AccessDenied", f"{service} is not a service of the local stack")

    def _hide_missing_objects(
        self,
        environ: dict[str, Any],
        start_response: StartResponse,
        principal: Principal,
        request: HttpRequest,
    ) -> Iterator[bytes]:
        """S3 tells a principal that may not list the bucket 403, not 404, for a key that is not there."""
        captured: list[Any] = []

        def capture(
            status: str, headers: list[tuple[str, str]], exc_info: Any = None
        ) -> Callable[[bytes], None]:
            captured[:] = [status, headers]
            return lambda _: None

        result = self._app(environ, capture)
        try:
            chunks = list(result)
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()
        bucket, _ = split_s3_path(request.path)
        if captured[0].startswith("404") and not principal.allows("s3:ListBucket", f"arn:aws:s3:::{bucket}"):
            denied = Denied(403, "AccessDenied", "Access Denied")
            _, headers, body = _error("s3", request.method, denied)
            start_response("403 Forbidden", list(headers.items()))
            yield body
            return
        start_response(*captured)
        yield from chunks
