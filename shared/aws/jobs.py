"""The jobs table. Every state change is a conditional write (DESIGN.md section 2)."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from shared.aws.items import deserialize, job_from_item, job_to_item, serialize, value
from shared.error_size import bounded
from shared.errors import ServiceUnavailable
from shared.gpu_cost import AttemptCost
from shared.models import ACTIVE_STATUSES, ErrorCode, Job, JobError, JobStatus, OutputFile
from shared.names import JOBS_BY_OWNER_INDEX, JobAttr
from shared.state import sources_of

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

BATCH_GET_MAX = 100
BATCH_GET_ATTEMPTS = 5
_RETRYABLE = {
    "ProvisionedThroughputExceededException",
    "ThrottlingException",
    "RequestLimitExceeded",
    "InternalServerError",
    "ServiceUnavailable",
}


@dataclass(frozen=True)
class CancelState:
    status: JobStatus
    attempt: int
    cancel_requested: bool


def _unavailable(error: ClientError, action: str) -> ServiceUnavailable:
    code = error.response.get("Error", {}).get("Code", "Unknown")
    return ServiceUnavailable(f"the job store could not {action} ({code})", cause=code)


def _is_condition_failure(error: ClientError) -> bool:
    return error.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException"


# Every state change moves the job's event sequence on in its own conditional write (shared/events.py).
_NEXT_EVENT = "#evseq = if_not_exists(#evseq, :ev0) + :ev1"
_NEXT_EVENT_NAMES = {"#evseq": JobAttr.EVENT_SEQ}
_NEXT_EVENT_VALUES = {":ev0": value(0), ":ev1": value(1)}


def _status_in(placeholder_prefix: str, statuses: frozenset[JobStatus]) -> tuple[str, dict[str, Any]]:
    names = sorted(s.value for s in statuses)
    keys = [f":{placeholder_prefix}{i}" for i in range(len(names))]
    return f"#status IN ({', '.join(keys)})", {k: value(v) for k, v in zip(keys, names, strict=True)}


class JobStore:
    """Reads and conditionally writes jobs; a failed condition returns ``None``/``False``, never raises."""

    def __init__(self, client: DynamoDBClient, jobs_table: str) -> None:
        self._db = client
        self._jobs = jobs_table

    # -- creation and reads -------------------------------------------------------------------

    def create(self, job: Job) -> bool:
        """Put the new job; False when a job with its id exists (the id an Idempotency-Key names)."""
        try:
            self._db.put_item(
                TableName=self._jobs,
                Item=job_to_item(job),
                ConditionExpression="attribute_not_exists(#id)",
                ExpressionAttributeNames={"#id": JobAttr.JOB_ID},
            )
        except ClientError as error:
            if _is_condition_failure(error):
                return False
            raise _unavailable(error, "save the job") from error
        return True

    def keep_until(self, job_id: str, expires_at: int) -> bool:
        """Keep the job at least until ``expires_at`` (epoch seconds); False when it is gone already."""
        try:
            self._db.update_item(
                TableName=self._jobs,
                Key={JobAttr.JOB_ID: value(job_id)},
                UpdateExpression="SET #exp = :exp",
                ConditionExpression="attribute_exists(#id) AND #exp < :exp",
                ExpressionAttributeNames={"#id": JobAttr.JOB_ID, "#exp": JobAttr.EXPIRES_AT},
                ExpressionAttributeValues={":exp": value(expires_at)},
            )
        except ClientError as error:
            if _is_condition_failure(error):
                return self.get(job_id) is not None
            raise _unavailable(error, "keep the job") from error
        return True

    def get(self, job_id: str, consistent: bool = True) -> Job | None:
        """The job; ``consistent=False`` reads at half the price and may miss the last second's writes."""
        try:
            response = self._db.get_item(
                TableName=self._jobs, Key={JobAttr.JOB_ID: value(job_id)}, ConsistentRead=consistent
            )
        except ClientError as error:
            raise _unavailable(error, "read the job") from error
        item = response.get("Item")
        return job_from_item(item) if item else None

    def cancel_state(self, job_id: str) -> CancelState | None:
        """The few attributes a runner polls to hear a cancel: eventually consistent and projected,
        so each read costs half a read unit whatever the item's size."""
        try:
            response = self._db.get_item(
                TableName=self._jobs,
                Key={JobAttr.JOB_ID: value(job_id)},
                ProjectionExpression="#s, #a, #c",
                ExpressionAttributeNames={
                    "#s": JobAttr.STATUS,
                    "#a": JobAttr.ATTEMPT,
                    "#c": JobAttr.CANCEL_REQUESTED,
                },
            )
        except ClientError as error:
            raise _unavailable(error, "read the job's cancel flag") from error
        item = response.get("Item")
        if not item:
            return None
        plain = deserialize(item)
        return CancelState(
            JobStatus(plain[JobAttr.STATUS]),
            int(plain.get(JobAttr.ATTEMPT, 0)),
            bool(plain.get(JobAttr.CANCEL_REQUESTED, False)),
        )

    def list_by_owner(
        self, owner: str, limit: int, status: JobStatus | None = None, start_key: dict[str, Any] | None = None
    ) -> tuple[list[Job], dict[str, Any] | None]:
        """The owner's jobs, newest first, and the key to continue after (None when there are no more).

        The by-owner index holds keys only, so each page of keys is read whole with BatchGetItem, and the
        status filter applies to the jobs read."""
        kwargs: dict[str, Any] = {
            "TableName": self._jobs,
            "IndexName": JOBS_BY_OWNER_INDEX,
            "KeyConditionExpression": "#o = :o",
            "ExpressionAttributeNames": {"#o": JobAttr.OWNER},
            "ExpressionAttributeValues": {":o": value(owner)},
            "ScanIndexForward": False,
        }
        if start_key:
            kwargs["ExclusiveStartKey"] = serialize(start_key)
        jobs: list[Job] = []
        try:
            while True:
                kwargs["Limit"] = limit - len(jobs) if status is None else max(25, limit)
                response = self._db.query(**kwargs)
                ids = [deserialize(item)[JobAttr.JOB_ID] for item in response.get("Items", [])]
                found = self._get_many(ids)
                for job_id in ids:
                    job = found.get(job_id)
                    # Gone since the index was read (expired), or filtered out.
                    if job is None or job.owner != owner or (status is not None and job.status is not status):
                        continue
                    jobs.append(job)
                    if len(jobs) == limit:
                        return jobs, _owner_index_key(job)
                last = response.get("LastEvaluatedKey")
                if not last:
                    return jobs, None
                kwargs["ExclusiveStartKey"] = last
        except ClientError as error:
            raise _unavailable(error, "list the jobs") from error

    def created_between(self, owner: str, since_ms: int, until_ms: int, max_jobs: int) -> list[Job] | None:
        """The owner's jobs created in [since, until), or None when there are more than ``max_jobs``."""
        kwargs: dict[str, Any] = {
            "TableName": self._jobs,
            "IndexName": JOBS_BY_OWNER_INDEX,
            "KeyConditionExpression": "#o = :o AND #c BETWEEN :since AND :until",
            "ExpressionAttributeNames": {"#o": JobAttr.OWNER, "#c": JobAttr.CREATED_AT},
            "ExpressionAttributeValues": {
                ":o": value(owner),
                ":since": value(since_ms),
                ":until": value(until_ms - 1),
            },
        }
        ids: list[str] = []
        try:
            while True:
                response = self._db.query(**kwargs)
                ids += [deserialize(item)[JobAttr.JOB_ID] for item in response.get("Items", [])]
                if len(ids) > max_jobs:
                    return None
                last = response.get("LastEvaluatedKey")
                if not last:
                    break
                kwargs["ExclusiveStartKey"] = last
            found = self._get_many(ids)
        except ClientError as error:
            raise _unavailable(error, "total the jobs") from error
        return [job for job in found.values() if job.owner == owner]

    def _get_many(self, job_ids: list[str]) -> dict[str, Job]:
        """The jobs that exist among ``job_ids``, read 100 at a time (eventually consistent, as the index)."""
        found: dict[str, Job] = {}
        for start in range(0, len(job_ids), BATCH_GET_MAX):
            request: dict[str, Any] = {
                self._jobs: {
                    "Keys": [{JobAttr.JOB_ID: value(j)} for j in job_ids[start : start + BATCH_GET_MAX]]
                }
            }
            for attempt in range(BATCH_GET_ATTEMPTS):
                response = self._db.batch_get_item(RequestItems=request)
                for item in response.get("Responses", {}).get(self._jobs, []):
                    job = job_from_item(item)
                    found[job.job_id] = job
                request = response.get("UnprocessedKeys") or {}
                if not request:
                    break
                time.sleep(0.05 * 2**attempt)
            if request:
                raise ServiceUnavailable("DynamoDB kept some of the jobs back (throttled); try again")
        return found

    # -- conditional transitions --------------------------------------------------------------

    def _update(
        self,
        job_id: str,
        update: str,
        condition: str,
        names: dict[str, str],
        values: dict[str, Any],
    ) -> Job | None:
        try:
            response = self._db.update_item(
                TableName=self._jobs,
                Key={JobAttr.JOB_ID: value(job_id)},
                UpdateExpression=update,
                ConditionExpression=condition,
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
                ReturnValues="ALL_NEW",
            )
        except ClientError as error:
            if _is_condition_failure(error):
                return None
            raise _unavailable(error, "update the job") from error
        return job_from_item(response["Attributes"])

    def claim(self, job_id: str, runner_id: str, now_ms: int, lease_until_ms: int) -> Job | None:
        """Take the job for a new attempt if it is active and no live lease holds it."""
        status_cond, status_values = _status_in("s", ACTIVE_STATUSES)
        return self._update(
            job_id,
            "SET #attempt = if_not_exists(#attempt, :zero) + :one, #lo = :runner, #lu = :lu, #upd = :now",
            f"{status_cond} AND (attribute_not_exists(#lu) OR #lu < :now)",
            {
                "#status": JobAttr.STATUS,
                "#attempt": JobAttr.ATTEMPT,
                "#lo": JobAttr.LEASE_OWNER,
                "#lu": JobAttr.LEASE_UNTIL,
                "#upd": JobAttr.UPDATED_AT,
            },
            {
                ":zero": value(0),
                ":one": value(1),
                ":runner": value(runner_id),
                ":lu": value(lease_until_ms),
                ":now": value(now_ms),
                **status_values,
            },
        )

    def _fenced(
        self,
        job_id: str,
        attempt: int,
        sets: dict[str, Any],
        *,
        removes: tuple[str, ...] = (),
        allowed: frozenset[JobStatus] = ACTIVE_STATUSES,
        unless_cancel_requested: bool = False,
        state_change: bool = False,
    ) -> Job | None:
        """An update that only the holder of ``attempt`` can make, and only while the job is active."""
        names = {"#status": JobAttr.STATUS, "#attempt": JobAttr.ATTEMPT}
        values: dict[str, Any] = {":attempt": value(attempt)}
        assignments = []
        for i, (attr, new_value) in enumerate(sets.items()):
            names[f"#a{i}"] = attr
            values[f":v{i}"] = value(new_value)
            assignments.append(f"#a{i} = :v{i}")
        if state_change:
            assignments.append(_NEXT_EVENT)
            names.update(_NEXT_EVENT_NAMES)
            values.update(_NEXT_EVENT_VALUES)
        update = "SET " + ", ".join(assignments)
        if removes:
            for i, attr in enumerate(removes):
                names[f"#r{i}"] = attr
            update += " REMOVE " + ", ".join(f"#r{i}" for i in range(len(removes)))
        status_cond, status_values = _status_in("s", allowed)
        values.update(status_values)
        condition = f"{status_cond} AND #attempt = :attempt"
        if unless_cancel_requested:
            names["#cr"] = JobAttr.CANCEL_REQUESTED
            values[":true"] = value(True)
            condition += " AND (attribute_not_exists(#cr) OR #cr <> :true)"
        return self._update(job_id, update, condition, names, values)

    def renew_lease(self, job_id: str, attempt: int, lease_until_ms: int, now_ms: int) -> Job | None:
        """Extend the lease; the returned job tells the runner whether a cancel was asked for."""
        return self._fenced(
            job_id, attempt, {JobAttr.LEASE_UNTIL: lease_until_ms, JobAttr.UPDATED_AT: now_ms}
        )

    def mark_running(
        self, job_id: str, attempt: int, now_ms: int, prompt_id: str | None = None
    ) -> Job | None:
        """ComfyUI started the attempt's prompt; its id is kept to find the prompt in ComfyUI's history."""
        sets: dict[str, Any] = {
            JobAttr.STATUS: JobStatus.RUNNING.value,
            JobAttr.STARTED_AT: now_ms,
            JobAttr.UPDATED_AT: now_ms,
        }
        if prompt_id is not None:
            sets[JobAttr.PROMPT_ID] = prompt_id
        return self._fenced(
            job_id,
            attempt,
            sets,
            # A later attempt of a job whose runner died restarts it: running again, under its own fence.
            allowed=ACTIVE_STATUSES,
            state_change=True,
        )

    def record_progress(self, job_id: str, attempt: int, percent: float, now_ms: int) -> Job | None:
        return self._fenced(
            job_id, attempt, {JobAttr.PROGRESS: round(percent, 2), JobAttr.UPDATED_AT: now_ms}
        )

    def release(self, job_id: str, attempt: int, now_ms: int) -> Job | None:
        """Give the job up so that another runner may claim it at once."""
        return self._fenced(job_id, attempt, {JobAttr.UPDATED_AT: now_ms}, removes=(JobAttr.LEASE_UNTIL,))

    def finish(
        self,
        job_id: str,
        attempt: int,
        status: JobStatus,
        now_ms: int,
        *,
        outputs: list[OutputFile] | None = None,
        error: JobError | None = None,
        cost: AttemptCost | None = None,
    ) -> Job | None:
        """Move the job to a terminal state, fenced by the attempt. Success is refused once a cancel was
        asked for: the runner then ends the job canceled."""
        sets: dict[str, Any] = {
            JobAttr.STATUS: status.value,
            JobAttr.FINISHED_AT: now_ms,
            JobAttr.UPDATED_AT: now_ms,
        }
        if status is JobStatus.SUCCEEDED:
            sets[JobAttr.PROGRESS] = 100
        if outputs is not None:
            sets[JobAttr.OUTPUTS] = [o.model_dump(mode="json") for o in outputs]
        if error is not None:
            sets[JobAttr.ERROR] = _error_value(error)
        if cost is not None:
            sets[JobAttr.TIMINGS] = cost.timings.model_dump(exclude_none=True)
            sets[JobAttr.GPU_SECONDS] = cost.gpu_seconds
            sets[JobAttr.GPU_COST_USD] = cost.gpu_cost_usd
        return self._fenced(
            job_id,
            attempt,
            sets,
            removes=(JobAttr.LEASE_UNTIL, JobAttr.IN_FLIGHT),
            allowed=sources_of(status),
            unless_cancel_requested=status is JobStatus.SUCCEEDED,
            state_change=True,
        )

    # -- transitions made by others than the lease holder -------------------------------------

    def cancel_queued(self, job_id: str, owner: str, now_ms: int) -> Job | None:
        """queued -> canceled, whether or not a runner holds it (it drops it from ComfyUI's queue)."""
        return self._update(
            job_id,
            f"SET #status = :canceled, #fin = :now, #upd = :now, {_NEXT_EVENT} REMOVE #if",
            "#status = :queued AND #owner = :owner",
            {
                "#if": JobAttr.IN_FLIGHT,
                "#status": JobAttr.STATUS,
                "#fin": JobAttr.FINISHED_AT,
                "#upd": JobAttr.UPDATED_AT,
                "#owner": JobAttr.OWNER,
                **_NEXT_EVENT_NAMES,
            },
            {
                ":canceled": value(JobStatus.CANCELED.value),
                ":queued": value(JobStatus.QUEUED.value),
                ":now": value(now_ms),
                ":owner": value(owner),
                **_NEXT_EVENT_VALUES,
            },
        )

    def request_cancel(self, job_id: str, owner: str, now_ms: int) -> Job | None:
        """running -> cancel_requested; the runner hears it within about a second (cancel_watch)."""
        return self._update(
            job_id,
            "SET #cr = :true, #upd = :now",
            "#status = :running AND #owner = :owner",
            {
                "#status": JobAttr.STATUS,
                "#cr": JobAttr.CANCEL_REQUESTED,
                "#upd": JobAttr.UPDATED_AT,
                "#owner": JobAttr.OWNER,
            },
            {
                ":true": value(True),
                ":running": value(JobStatus.RUNNING.value),
                ":now": value(now_ms),
                ":owner": value(owner),
            },
        )

    def expire(self, job_id: str, attempt: int, now_ms: int) -> Job | None:
        """queued past its deadline -> expired, by the runner that claimed it."""
        error = JobError(code=ErrorCode.EXPIRED, message="the job waited in the queue past its deadline")
        return self._fenced(
            job_id,
            attempt,
            {
                JobAttr.STATUS: JobStatus.EXPIRED.value,
                JobAttr.FINISHED_AT: now_ms,
                JobAttr.UPDATED_AT: now_ms,
                JobAttr.ERROR: _error_value(error),
            },
            removes=(JobAttr.LEASE_UNTIL, JobAttr.IN_FLIGHT),
            allowed=frozenset({JobStatus.QUEUED}),
            state_change=True,
        )

    def fail_if_active(self, job_id: str, error: JobError, now_ms: int) -> Job | None:
        """Fail a job whatever its attempt, as long as it is not terminal (the DLQ's last word)."""
        status_cond, status_values = _status_in("s", ACTIVE_STATUSES)
        return self._update(
            job_id,
            f"SET #status = :failed, #fin = :now, #upd = :now, #err = :err, {_NEXT_EVENT} REMOVE #lu, #if",
            status_cond,
            {
                "#if": JobAttr.IN_FLIGHT,
                "#status": JobAttr.STATUS,
                "#fin": JobAttr.FINISHED_AT,
                "#upd": JobAttr.UPDATED_AT,
                "#err": JobAttr.ERROR,
                "#lu": JobAttr.LEASE_UNTIL,
                **_NEXT_EVENT_NAMES,
            },
            {
                ":failed": value(JobStatus.FAILED.value),
                ":now": value(now_ms),
                ":err": value(_error_value(error)),
                **status_values,
                **_NEXT_EVENT_VALUES,
            },
        )


def _owner_index_key(job: Job) -> dict[str, Any]:
    """Where a query of the by-owner index resumes after ``job``."""
    return {JobAttr.JOB_ID: job.job_id, JobAttr.OWNER: job.owner, JobAttr.CREATED_AT: job.created_at}


def _error_value(error: JobError) -> dict[str, Any]:
    plain = bounded(error).model_dump(mode="json", exclude_none=True)
    if "details" in plain:
        plain["details"] = json.dumps(plain["details"], separators=(",", ":"))
    return plain
