"""The discrete-event model of a day across pools: driven by the CDK app's own settings."""

from __future__ import annotations

from bench.scale_model import PoolModel, Scaling, Workload, context_of, model

LIGHT_DAY = Workload(jobs_per_day=3000, job_seconds_mean=20)


def test_the_model_reads_the_pools_and_scaling_the_cdk_app_deploys() -> None:
    config = context_of(
        {
            "targetJobsPerRunner": 3,
            "scaleInCooldownSeconds": 900,
            "rootVolumeThroughputMiBps": 250,
            "rootVolumeIops": 3000,
            "pools": [
                {"name": "xl", "instanceTypes": ["g5.12xlarge"], "gpusPerInstance": 4, "maxInstances": 2}
            ],
        }
    )
    xl = config.all_pools[1]
    scaling = Scaling.of(config, xl, LIGHT_DAY)
    assert (scaling.target_jobs_per_runner, scaling.scale_in_cooldown_seconds) == (3, 900)
    assert (scaling.max_runners, scaling.gpus_per_instance) == (8, 4)
    # The image is pulled at the root volume's throughput: 12 GiB at 250 MiB/s.
    assert round(scaling.pull_seconds, 1) == round(12 * 1024 / 250, 1)
    rows = model(config, LIGHT_DAY, {"g5.xlarge": (1.0, 0.4), "g5.12xlarge": (5.0, 2.0)})
    assert [(r["pool"], r["capacity"]) for r in rows] == [
        ("default", "on-demand"),
        ("default", "spot"),
        ("xl", "on-demand"),
        ("xl", "spot"),
    ]
    for row in rows:
        assert row["jobs_started"] > 2500
        assert 0 < row["gpu_utilisation"] <= 1
        assert row["queue_wait_p50_s"] <= row["queue_wait_p99_s"]
        assert row["cost_per_job_usd"] == round(
            row["instance_hours"] * row["usd_per_hour"] / row["jobs_started"], 5
        )


def test_fewer_runners_make_jobs_wait_longer_and_spot_interruptions_lose_no_job() -> None:
    config = context_of({})
    roomy = Scaling.of(config, config.default_pool, LIGHT_DAY)
    tight = Scaling(**{**roomy.__dict__, "max_runners": 1})
    busy_day = Workload(jobs_per_day=6000, job_seconds_mean=12)
    assert (
        PoolModel(tight, busy_day, spot=False).run()["queue_wait_p99_s"]
        > PoolModel(roomy, busy_day, spot=False).run()["queue_wait_p99_s"]
    )
    stormy = Workload(jobs_per_day=3000, job_seconds_mean=20, spot_interruptions_per_hour=2.0)
    spot = PoolModel(roomy, stormy, spot=True)
    result = spot.run()
    assert result["spot_interruptions"] > 0
    # No job is lost: each one that arrived started, or still waits at the end of the day.
    assert result["jobs_started"] + result["jobs_never_started"] == result["jobs_arrived"]
    # The jobs handed back at a notice ran again: none is left half done.
    assert all(job.started is None or job.started + job.seconds <= 86400 for job in spot.queue.items)
