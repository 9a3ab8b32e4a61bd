"""What an HTTP request to DynamoDB, SQS or S3 asks IAM for: each action, on which resource, with which keys.

One request can need several authorizations (a transaction names each table with its own action; a
multi-object delete names each key), as AWS authorizes them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlparse
from xml.etree import ElementTree

from local.iam.policy import Context


@dataclass(frozen=True)
class Call:
    action: str
    resource: str
    context: Context = field(default_factory=dict)


@dataclass(frozen=True)
class HttpRequest:
    method: str
    path: str  # decoded
    query: Mapping[str, list[str]]
    headers: Mapping[str, str]  # lower-case names
    body: bytes
    form: Mapping[str, str] = field(default_factory=dict)

    def json(self) -> dict[str, Any]:
        try:
            parsed = json.loads(self.body or b"{}")
        except ValueError:
            return {}
        return parsed if isinstance(parsed, dict) else {}


@dataclass(frozen=True)
class Arns:
    account_id: str
    region: str

    def table(self, name: str) -> str:
        return (
            name
            if name.startswith("arn:")
            else f"arn:aws:dynamodb:{self.region}:{self.account_id}:table/{name}"
        )

    def event_bus(self, name_or_arn: str) -> str:
        if name_or_arn.startswith("arn:"):
            return name_or_arn
        return f"arn:aws:events:{self.region}:{self.account_id}:event-bus/{name_or_arn}"

    def queue(self, url_or_name: str) -> str:
        name = (
            urlparse(url_or_name).path.rstrip("/").rsplit("/", 1)[-1] if "/" in url_or_name else url_or_name
        )
        return f"arn:aws:sqs:{self.region}:{self.account_id}:{name}"


# -- DynamoDB ------------------------------------------------------------------------------------------

_TRANSACT_WRITE = {
    "Put": "PutItem",
    "Update": "UpdateItem",
    "Delete": "DeleteItem",
    "ConditionCheck": "ConditionCheckItem",
}


def dynamodb_calls(request: HttpRequest, arns: Arns) -> list[Call]:
    target = request.headers.get("x-amz-target", "")
    operation = target.rpartition(".")[2]
    body = request.json()
    if target.startswith("DynamoDBStreams"):
        # A shard iterator starts with its stream's ARN (moto's, as AWS's are opaque): GetRecords is
        # authorized on the stream, as in AWS.
        stream = body.get("StreamArn") or str(body.get("ShardIterator", "")).partition("|")[0]
        return [Call(f"dynamodb:{operation}", stream or "*")]
    if operation == "TransactWriteItems":
        return [
            Call(f"dynamodb:{_TRANSACT_WRITE[kind]}", arns.table(spec["TableName"]))
            for item in body.get("TransactItems", [])
            for kind, spec in item.items()
        ]
    if operation == "TransactGetItems":
        return [
            Call("dynamodb:GetItem", arns.table(item["Get"]["TableName"]))
            for item in body.get("TransactItems", [])
        ]
    if operation in {"BatchWriteItem", "BatchGetItem"}:
        return [Call(f"dynamodb:{operation}", arns.table(table)) for table in body.get("RequestItems", {})]
    if "TableName" not in body:
        return [Call(f"dynamodb:{operation}", "*")]
    resource = arns.table(body["TableName"])
    if body.get("IndexName"):
        resource += f"/index/{body['IndexName']}"
    return [Call(f"dynamodb:{operation}", resource)]


# -- EventBridge ---------------------------------------------------------------------------------------


def events_calls(request: HttpRequest, arns: Arns) -> list[Call]:
    """PutEvents is authorized on each entry's bus; other operations on the bus they name."""
    operation = request.headers.get("x-amz-target", "").rpartition(".")[2]
    body = request.json()
    buses = [str(e.get("EventBusName") or "default") for e in body.get("Entries", [])] or [
        str(body.get("EventBusName") or body.get("Name") or "default")
    ]
    return [Call(f"events:{operation}", arns.event_bus(bus)) for bus in dict.fromkeys(buses)]


# -- SQS -----------------------------------------------------------------------------------------------

# A batch call is authorized as the single action it repeats.
_SQS_BATCH = {
    "SendMessageBatch": "SendMessage",
    "DeleteMessageBatch": "DeleteMessage",
    "ChangeMessageVisibilityBatch": "ChangeMessageVisibility",
}


def sqs_calls(request: HttpRequest, arns: Arns) -> list[Call]:
    target = request.headers.get("x-amz-target", "")
    if target:
        operation, params = target.rpartition(".")[2], request.json()
    else:  # the query protocol: form fields
        operation, params = request.form.get("Action", ""), dict(request.form)
    action = f"sqs:{_SQS_BATCH.get(operation, operation)}"
    queue = params.get("QueueUrl") or params.get("QueueName")
    return [Call(action, arns.queue(str(queue)) if queue else "*")]


# -- S3 ------------------------------------------------------------------------------------------------

_OBJECT_SUBRESOURCES = {"tagging": "ObjectTagging", "acl": "ObjectAcl", "retention": "ObjectRetention"}
_BUCKET_READS = {
    "uploads": "s3:ListBucketMultipartUploads",
    "versions": "s3:ListBucketVersions",
    "location": "s3:GetBucketLocation",
}


def split_s3_path(path: str) -> tuple[str, str]:
    bucket, _, key = path.lstrip("/").partition("/")
    return bucket, key


def s3_calls(request: HttpRequest) -> list[Call]:
    bucket, key = split_s3_path(request.path)
    if not bucket:
        return [Call("s3:ListAllMyBuckets", "*")]
    method = request.method
    # A presigned URL's own parameters (X-Amz-Credential...) are its signature, not what it asks for.
    query = {k: v for k, v in request.query.items() if not k.lower().startswith("x-amz-")}
    bucket_arn = f"arn:aws:s3:::{bucket}"
    if key:
        obj = f"{bucket_arn}/{key}"
        sub = next((name for name in _OBJECT_SUBRESOURCES if name in query), None)
        if method in {"GET", "HEAD"}:
            if "uploadId" in query:
                return [Call("s3:ListMultipartUploadParts", obj)]
            return [Call(f"s3:Get{_OBJECT_SUBRESOURCES[sub]}" if sub else "s3:GetObject", obj)]
        if method == "PUT":
            if sub:
                return [Call(f"s3:Put{_OBJECT_SUBRESOURCES[sub]}", obj)]
            calls = [Call("s3:PutObject", obj)]
            source = request.headers.get("x-amz-copy-source")
            if source:
                calls.append(Call("s3:GetObject", f"arn:aws:s3:::{source.lstrip('/').split('?')[0]}"))
            return calls
        if method == "POST":
            return [Call("s3:PutObject", obj)]  # creating or completing a multipart upload
        if method == "DELETE":
            return [Call("s3:AbortMultipartUpload" if "uploadId" in query else "s3:DeleteObject", obj)]
    if method == "POST" and "delete" in query:
        # The body comes from the service's own processes on 127.0.0.1.
        root = ElementTree.fromstring(request.body)  # noqa: S314
        keys = [el.text or "" for el in root.iter() if re.sub(r"^\{.*\}", "", el.tag) == "Key"]
        return [Call("s3:DeleteObject", f"{bucket_arn}/{k}") for k in keys]
    if method == "POST":  # a browser-style form upload: the key is a form field
        return [Call("s3:PutObject", f"{bucket_arn}/{request.form.get('key', '')}")]
    if method in {"GET", "HEAD"}:
        read = next((action for name, action in _BUCKET_READS.items() if name in query), None)
        if read:
            return [Call(read, bucket_arn)]
        if method == "GET" and any(q not in _LIST_PARAMETERS for q in query):
            return [Call(f"s3:GetBucket{next(iter(query)).capitalize()}", bucket_arn)]
        context = {
            f"s3:{name}": query[param][0] for param, name in _LIST_CONDITION_KEYS.items() if param in query
        }
        return [Call("s3:ListBucket", bucket_arn, context)]
    if method == "PUT":
        return [
            Call(
                "s3:CreateBucket" if not query else f"s3:PutBucket{next(iter(query)).capitalize()}",
                bucket_arn,
            )
        ]
    if method == "DELETE":
        return [Call("s3:DeleteBucket", bucket_arn)]
    return [Call(f"s3:{method}Bucket", bucket_arn)]


# ListObjects(V2)'s query parameters, and the condition keys IAM gives three of them.
_LIST_CONDITION_KEYS = {"prefix": "prefix", "delimiter": "delimiter", "max-keys": "max-keys"}
_LIST_PARAMETERS = {
    *_LIST_CONDITION_KEYS,
    "list-type",
    "continuation-token",
    "start-after",
    "encoding-type",
    "fetch-owner",
    "marker",
    "x-id",
}
