"""The floor: the AWS calls a job's path makes, issued directly with boto3, one after another.

Same moto, same tables and bucket, items of the same shape and size; messages go to a scratch queue of
the same kind so no runner picks them up. What the path costs above this is the service's own work:
serialisation, validation, threads, polling and waiting between the calls.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

from bench.harness import Bench
from bench.workflows import near_zero
from shared.aws.items import job_to_item
from shared.models import Job
from shared.names import ConnectionAttr, JobAttr

PNG_8X8 = b"\x89PNG\r\n\x1a\n" + bytes(120)

# The calls, in the order the path makes them for a near-zero job with one subscriber (read from the
# code of functions/api, functions/ws and gpu_runner; the counted calls are reported beside them).
SUBMIT_CALLS = ["GetItem (the job the Idempotency-Key names)", "SendMessage", "PutItem (job)"]
PATH_CALLS = [
    *SUBMIT_CALLS,
    "GetItem (subscribe)",
    "PutItem (subscription)",
    "GetItem (subscribe, again)",
    "post_to_connection (snapshot)",
    "ReceiveMessage",
    "GetItem (claim)",
    "UpdateItem (claim)",
    "UpdateItem (running)",
    "Query (subscribers)",
    "post_to_connection (running)",
    "UpdateItem (progress)",
    "post_to_connection (progress)",
    "PutObject (output)",
    "UpdateItem (finish)",
    "DeleteMessage",
    "Query (subscribers, again)",
    "post_to_connection (succeeded)",
]


class Floor:
    def __init__(self, bench: Bench, connection_id: str | None = None) -> None:
        self.db = bench.boto("dynamodb")
        self.sqs = bench.boto("sqs")
        self.s3 = bench.boto("s3")
        self.posts = bench.boto_management() if connection_id else None
        self.connection_id = connection_id
        res = bench.resources
        self.jobs, self.conns, self.bucket = (
            res.jobs_table,
            res.connections_table,
            res.bucket,
        )
        self.queue_url = self.sqs.create_queue(
            QueueName="bench-floor", Attributes={"VisibilityTimeout": "30"}
        )["QueueUrl"]
        now = int(time.time() * 1000)
        job = Job(
            job_id="template",
            owner="bench-owner",
            created_at=now,
            updated_at=now,
            deadline=now + 86_400_000,
            workflow=near_zero(),
            expires_at=now // 1000 + 86_400,
            request_hash="h" * 64,
            key_expires_at=now // 1000 + 86_400,
        )
        self.job_item = job_to_item(job)
        self.frame = json.dumps({"type": "job.status", "status": "running", "job_id": "x" * 36}).encode()

    def _update(self, job_id: str, expression: str, values: dict[str, Any]) -> None:
        self.db.update_item(
            TableName=self.jobs,
            Key={JobAttr.JOB_ID: {"S": job_id}},
            UpdateExpression=expression,
            ConditionExpression="attribute_exists(job_id)",
            ExpressionAttributeValues=values,
            ReturnValues="ALL_NEW",
        )

    def submit_once(self) -> tuple[float, str]:
        """GetItem (the key's job: none), SendMessage, PutItem: what POST /v1/jobs costs at least."""
        job_id = str(uuid.uuid4())
        started = time.perf_counter()
        key = {JobAttr.JOB_ID: {"S": job_id}}
        self.db.get_item(TableName=self.jobs, Key=key, ConsistentRead=True)
        self.sqs.send_message(QueueUrl=self.queue_url, MessageBody=json.dumps({"v": 1, "job_id": job_id}))
        self.db.put_item(
            TableName=self.jobs,
            Item={**self.job_item, JobAttr.JOB_ID: {"S": job_id}},
            ConditionExpression="attribute_not_exists(job_id)",
        )
        return time.perf_counter() - started, job_id

    def path_once(self) -> float:
        """Every call of PATH_CALLS, in order; the seconds they took together."""
        elapsed, job_id = self.submit_once()
        started = time.perf_counter()
        key = {JobAttr.JOB_ID: {"S": job_id}}
        now = {":now": {"N": str(int(time.time() * 1000))}}
        self.db.get_item(TableName=self.jobs, Key=key, ConsistentRead=True)
        self.db.put_item(
            TableName=self.conns,
            Item={
                ConnectionAttr.JOB: {"S": job_id},
                ConnectionAttr.CONNECTION_ID: {"S": "BenchFloorConn="},
                ConnectionAttr.EXPIRES_AT: {"N": "9999999999"},
            },
        )
        self.db.get_item(TableName=self.jobs, Key=key, ConsistentRead=True)
        self._post()
        messages = self.sqs.receive_message(
            QueueUrl=self.queue_url, MaxNumberOfMessages=1, WaitTimeSeconds=0, VisibilityTimeout=30
        )["Messages"]
        self.db.get_item(TableName=self.jobs, Key=key, ConsistentRead=True)
        self._update(
            job_id,
            "SET attempt = :one, lease_owner = :r, updated_at = :now",
            {":one": {"N": "1"}, ":r": {"S": "bench-runner"}, **now},
        )
        self._update(job_id, "SET started_at = :now, updated_at = :now", now)
        self._subscribers(job_id)
        self._post()
        self._update(job_id, "SET progress = :p, updated_at = :now", {":p": {"N": "50"}, **now})
        self._post()
        self.s3.put_object(
            Bucket=self.bucket,
            Key=f"outputs/bench/{job_id}/2/bench.png",
            Body=PNG_8X8,
            ContentType="image/png",
        )
        self.db.update_item(
            TableName=self.jobs,
            Key=key,
            UpdateExpression="SET #s = :done, finished_at = :now, outputs = :o REMOVE lease_until",
            ConditionExpression="attribute_exists(job_id)",
            ExpressionAttributeNames={"#s": JobAttr.STATUS},
            ExpressionAttributeValues={":done": {"S": "succeeded"}, ":o": {"L": []}, **now},
            ReturnValues="ALL_NEW",
        )
        self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=messages[0]["ReceiptHandle"])
        self._subscribers(job_id)
        self._post()
        return elapsed + time.perf_counter() - started

    def _subscribers(self, job_id: str) -> None:
        self.db.query(
            TableName=self.conns,
            KeyConditionExpression="#j = :j",
            ExpressionAttributeNames={"#j": ConnectionAttr.JOB},
            ExpressionAttributeValues={":j": {"S": job_id}},
        )

    def _post(self) -> None:
        if self.posts is not None:
            self.posts.post_to_connection(ConnectionId=self.connection_id, Data=self.frame)
