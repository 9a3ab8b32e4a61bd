"""Each tenant's jobs in flight (queued + running), counted for its tier's limit.

No counter to keep in step: a job carries ``in_flight`` (its owner) from its creation until the
conditional write that ends it removes it, whoever makes that write (the API's cancel, the runner,
the dead-letter function, an expiry). So a sparse index on it holds exactly the tenant's active jobs,
and the count comes back down with the same write that ends a job. The index is eventually consistent
(typically well under a second behind) and two submissions racing each other may both see room for
one: the limit is exact once the writes have propagated, and may be passed by a few concurrent
submissions of the same tenant at the very moment it is reached.

Only a job whose tenant's tier has a limit carries the attribute: the others never touch the index. A
tenant moved onto a limited tier starts counting with its next job (the jobs it has in flight then
are not counted).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from shared.aws.items import value
from shared.errors import ServiceUnavailable
from shared.names import JOBS_IN_FLIGHT_INDEX, JobAttr

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient


class InFlightJobs:
    def __init__(self, client: DynamoDBClient, jobs_table: str) -> None:
        self._db = client
        self._jobs = jobs_table

    def count(self, owner: str, up_to: int) -> int:
        """The owner's jobs in flight, counted up to ``up_to`` (enough to compare with a limit)."""
        kwargs: dict[str, Any] = {
            "TableName": self._jobs,
            "IndexName": JOBS_IN_FLIGHT_INDEX,
            "KeyConditionExpression": "#f = :o",
            "ExpressionAttributeNames": {"#f": JobAttr.IN_FLIGHT},
            "ExpressionAttributeValues": {":o": value(owner)},
            "Select": "COUNT",
        }
        total = 0
        try:
            while total < up_to:
                kwargs["Limit"] = up_to - total
                response = self._db.query(**kwargs)
                total += int(response.get("Count", 0))
                last = response.get("LastEvaluatedKey")
                if not last:
                    break
                kwargs["ExclusiveStartKey"] = last
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code", "Unknown")
            raise ServiceUnavailable(
                f"the job store could not count the jobs in flight ({code})", cause=code
            ) from error
        return total
