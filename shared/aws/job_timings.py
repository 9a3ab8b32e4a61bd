"""One stage's time written into a job's ``timings`` map, fenced by the attempt like every runner write."""

from __future__ import annotations

from typing import TYPE_CHECKING

from botocore.exceptions import BotoCoreError, ClientError

from shared.aws.items import value
from shared.errors import ServiceUnavailable
from shared.models import JobTimings
from shared.names import JobAttr

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

_STAGES = frozenset(JobTimings.model_fields)


class JobTimingsWriter:
    def __init__(self, client: DynamoDBClient, jobs_table: str) -> None:
        self._dynamodb = client
        self._table = jobs_table

    def record(self, job_id: str, attempt: int, stage: str, milliseconds: int) -> bool:
        """Sets ``timings.<stage>`` while ``attempt`` is the job's; False when it no longer is.

        A nested path can only be set inside a map that exists, so the first stage written makes the map
        (conditioned on its absence) and later ones set their key in it: neither ever drops another's.
        """
        if stage not in _STAGES:
            raise ValueError(f"{stage!r} is not a timing stage")
        attempt_is = {":a": value(attempt)}
        # The map's first stage first: on a job's first attempt no map exists yet.
        tries = (
            (
                "SET #t = :m",
                "#a = :a AND attribute_not_exists(#t)",
                {"#t": JobAttr.TIMINGS, "#a": JobAttr.ATTEMPT},
                {":m": value({stage: milliseconds}), **attempt_is},
            ),
            (
                "SET #t.#s = :v",
                "#a = :a AND attribute_exists(#t)",
                {"#t": JobAttr.TIMINGS, "#s": stage, "#a": JobAttr.ATTEMPT},
                {":v": value(milliseconds), **attempt_is},
            ),
        )
        for update, condition, names, values in tries:
            try:
                self._dynamodb.update_item(
                    TableName=self._table,
                    Key={JobAttr.JOB_ID: value(job_id)},
                    UpdateExpression=update,
                    ConditionExpression=condition,
                    ExpressionAttributeNames=names,
                    ExpressionAttributeValues=values,
                )
                return True
            except ClientError as error:
                if error.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                    raise ServiceUnavailable(
                        "the job's timings were not written", cause="ClientError"
                    ) from error
            except BotoCoreError as error:
                raise ServiceUnavailable(
                    "the job's timings were not written", cause=type(error).__name__
                ) from error
        return False
