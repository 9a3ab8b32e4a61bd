"""A DynamoDB stream's Lambda event source mapping, as Lambda runs it: poll the shards, keep the records
the mapping's filters match, invoke with a batch, retry a failed batch from the record it names.

The filters are the template's own (``filters_of``), so what invokes the function locally is what would
in AWS. Polls four times a second, as Lambda polls a stream's shards.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Mapping
from typing import Any

from local.event_filter import matches_any
from local.lambda_context import LocalLambdaContext

Handler = Callable[[dict[str, Any], Any], dict[str, Any] | None]
POLL_SECONDS = 0.25


def filters_of(template: Mapping[str, Any], handler: str) -> tuple[list[dict[str, Any]], int]:
    """The filter patterns and batch size of the stream mapping that invokes the function ``handler``."""
    resources = template["Resources"]
    for resource in resources.values():
        props = resource.get("Properties", {})
        if resource["Type"] != "AWS::Lambda::EventSourceMapping":
            continue
        function_id = props.get("FunctionName", {}).get("Ref", "")
        function = resources.get(function_id, {}).get("Properties", {})
        if function.get("Handler") == handler and "StartingPosition" in props:
            patterns = [json.loads(f["Pattern"]) for f in props.get("FilterCriteria", {}).get("Filters", [])]
            return patterns, int(props.get("BatchSize", 100))
    raise ValueError(f"the template has no stream event source mapping for {handler}")


def lambda_record(record: dict[str, Any], stream_arn: str, region: str) -> dict[str, Any]:
    """A DynamoDB Streams record as Lambda hands it to the function."""
    return {
        "eventID": record["eventID"],
        "eventName": record["eventName"],
        "eventVersion": record.get("eventVersion", "1.1"),
        "eventSource": "aws:dynamodb",
        "awsRegion": region,
        "dynamodb": record["dynamodb"],
        "eventSourceARN": stream_arn,
    }


class StreamEventSource:
    def __init__(
        self,
        dynamodb: Any,
        streams: Any,
        table: str,
        handler: Handler,
        *,
        patterns: list[dict[str, Any]],
        batch_size: int,
        region: str,
        name: str,
    ) -> None:
        self._streams = streams
        self._arn = dynamodb.describe_table(TableName=table)["Table"]["LatestStreamArn"]
        self._handler = handler
        self._patterns = patterns
        self._batch_size = batch_size
        self._region = region
        self._name = name
        self._iterators: dict[str, str] = {}
        self._pending: list[dict[str, Any]] = []
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._poll, name=f"{name}-stream-source", daemon=True)

    def start(self) -> None:
        self.open()
        self._thread.start()

    def open(self) -> None:
        """Read from the stream's start: the stack made the table a moment ago, so nothing is before it.
        Opening again reads every record again, as Lambda does when it retries from a batch's start."""
        self._pending = []
        for shard in self._streams.describe_stream(StreamArn=self._arn)["StreamDescription"]["Shards"]:
            self._iterators[shard["ShardId"]] = self._streams.get_shard_iterator(
                StreamArn=self._arn, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
            )["ShardIterator"]

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join(5)

    def poll_once(self) -> int:
        """Read what is new, invoke with what the filters keep; returns how many records were invoked."""
        for shard, iterator in list(self._iterators.items()):
            response = self._streams.get_records(ShardIterator=iterator, Limit=1000)
            self._iterators[shard] = response.get("NextShardIterator", iterator)
            self._pending += [
                lambda_record(r, self._arn, self._region)
                for r in response.get("Records", [])
                if matches_any(self._patterns, r)
            ]
        invoked = 0
        while self._pending:
            batch = self._pending[: self._batch_size]
            result = self._handler({"Records": batch}, LocalLambdaContext(self._name, 60_000)) or {}
            failures = [f["itemIdentifier"] for f in result.get("batchItemFailures", [])]
            if failures:
                # Lambda retries from the first failed record; those before it are done.
                sequence = [r["dynamodb"]["SequenceNumber"] for r in self._pending]
                first = min((sequence.index(f) for f in failures if f in sequence), default=0)
                self._pending = self._pending[first:]
                return invoked
            self._pending = self._pending[len(batch) :]
            invoked += len(batch)
        return invoked

    def _poll(self) -> None:
        while not self._stopping.is_set():
            try:
                self.poll_once()
            except Exception as error:  # the poller outlives a failed invocation, as Lambda's does
                print(f"{self._name} stream source: {error}", flush=True)
                self._stopping.wait(1)
            self._stopping.wait(POLL_SECONDS)
