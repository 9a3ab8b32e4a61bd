"""Job metrics as CloudWatch EMF lines on stdout: the ECS log driver ships them, CloudWatch extracts them."""

from __future__ import annotations

from aws_lambda_powertools.metrics import EphemeralMetrics, MetricUnit

from gpu_runner.follow import PromptOutcome
from shared.models import Job, JobStatus
from shared.names import METRICS_NAMESPACE, SERVICE_NAME, JobMetric

_COUNTERS = {
    JobStatus.SUCCEEDED: JobMetric.SUCCEEDED,
    JobStatus.FAILED: JobMetric.FAILED,
    JobStatus.CANCELED: JobMetric.CANCELED,
}


def emit(job: Job, outcome: PromptOutcome | None) -> None:
    """One EMF document per finished job: its count, and where its time went."""
    # Its own metric set: Metrics instances share one, so the job and GPU documents would mix.
    metrics = EphemeralMetrics(namespace=METRICS_NAMESPACE, service=SERVICE_NAME)
    counter = _COUNTERS.get(job.status)
    if counter is None:
        return
    metrics.add_metric(name=counter, unit=MetricUnit.Count, value=1)
    if job.started_at is not None:
        metrics.add_metric(
            name=JobMetric.QUEUE_WAIT_MS, unit=MetricUnit.Milliseconds, value=job.started_at - job.created_at
        )
        if job.finished_at is not None:
            metrics.add_metric(
                name=JobMetric.RUN_TIME_MS,
                unit=MetricUnit.Milliseconds,
                value=job.finished_at - job.started_at,
            )
    if job.timings is not None and job.timings.models_ms is not None:
        metrics.add_metric(
            name=JobMetric.MODEL_FETCH_MS, unit=MetricUnit.Milliseconds, value=job.timings.models_ms
        )
    if outcome and outcome.started_ms and outcome.finished_ms and job.finished_at is not None:
        # Everything but ComfyUI's own execution: API, queue, claim, upload and bookkeeping.
        comfy_ms = outcome.finished_ms - outcome.started_ms
        overhead = job.finished_at - job.created_at - comfy_ms
        metrics.add_metric(
            name=JobMetric.ORCHESTRATION_OVERHEAD_MS, unit=MetricUnit.Milliseconds, value=overhead
        )
    _timings(metrics, job)
    metrics.flush_metrics()


def _timings(metrics: EphemeralMetrics, job: Job) -> None:
    timings = job.timings
    parts = (
        (JobMetric.QUEUED_MS, timings.queued_ms if timings else None),
        (JobMetric.EXECUTION_MS, timings.execution_ms if timings else None),
        (JobMetric.UPLOAD_MS, timings.upload_ms if timings else None),
    )
    for name, milliseconds in parts:
        if milliseconds is not None:
            metrics.add_metric(name=name, unit=MetricUnit.Milliseconds, value=milliseconds)
    if job.gpu_seconds is not None:
        metrics.add_metric(name=JobMetric.GPU_SECONDS, unit=MetricUnit.Seconds, value=job.gpu_seconds)
    if job.gpu_cost_usd is not None:
        # CloudWatch has no currency unit: the name carries it.
        metrics.add_metric(name=JobMetric.GPU_COST_USD, unit=MetricUnit.NoUnit, value=job.gpu_cost_usd)
