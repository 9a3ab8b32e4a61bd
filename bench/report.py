"""The results as JSON and as the markdown tables pasted into the README's Performance section."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def _pcts(s: dict[str, Any], keys: tuple[str, ...] = ("p50", "p95", "p99")) -> str:
    return " / ".join(f"{s[k]:.1f}" for k in keys) if s.get("n") else "n/a"


def _main_rows(r: dict[str, Any]) -> list[tuple[str, str, str]]:
    rows: list[tuple[str, str, str]] = []
    if o := r.get("overhead"):
        rows.append(
            (
                f"1. Orchestration overhead per job, ms p50 / p95 / p99 ({o['jobs']} jobs)",
                _pcts(o["overhead_ms"]),
                f"floor {_pcts(o['floor_ms'])}; ratio p50 {o['ratio_p50']}x, p95 {o['ratio_p95']}x",
            )
        )
        stages = o["stages_ms"]
        rows.append(
            (
                "1. of which, p50 ms: POST answered / POST to ComfyUI start / ComfyUI done to terminal frame",
                f"{stages['post_answered']['p50']:.1f} / {stages['post_to_execution_start']['p50']:.1f} / "
                f"{stages['execution_success_to_terminal_frame']['p50']:.1f}",
                f"ComfyUI's own execution p50 {o['comfyui_execution_ms']['p50']:.1f} ms",
            )
        )
    if g := r.get("gpu_busy"):
        for key, label in (("prefetch_on", "PREFETCH=1"), ("prefetch_off", "PREFETCH=0")):
            b = g[key]
            rows.append(
                (
                    f"2. Backlog of {b['jobs']} jobs of {b['execution_ms']['p50']:.0f} ms, {label}: "
                    "jobs/s; ComfyUI idle gap ms p50 / p99 (the runner's own part; ComfyUI's gc pauses)",
                    f"{b['throughput_jobs_per_s']:.2f} jobs/s; gap "
                    f"{b['idle_gap_ms'].get('p50', 0):.1f} / {b['idle_gap_ms'].get('p99', 0):.1f} "
                    f"(runner {_pcts(b['runner_gap_ms'], ('p50', 'p99'))}; "
                    f"ComfyUI gc {b['comfyui_gc_pause_ms'].get('p50', 0):.1f} ms p50 "
                    f"in {b['gaps_with_gc_pause']} of {max(b['jobs'] - 1, 0)} gaps)",
                    f"limit {b['limit_jobs_per_s']:.2f} jobs/s "
                    f"({100 * b['throughput_of_limit']:.1f}% of it); "
                    f"ComfyUI busy {100 * b['comfyui_busy_fraction']:.1f}%",
                )
            )
    if s := r.get("submit_path"):
        rows.append(
            (
                "3. POST /v1/jobs handler in-process, ms p50 / p95 / p99",
                _pcts(s["handler_ms"]),
                f"raw read + send + put {_pcts(s['raw_calls_ms'])}; ratio p50 {s['handler_to_raw_p50']}x",
            )
        )
        rows.append(
            (
                f"3. POST /v1/jobs through the emulator, {s['clients']} concurrent clients (1 client)",
                f"{s['emulator_requests_per_s']:.0f} req/s ({s['emulator_requests_per_s_one_client']:.0f})",
                f"raw calls from {s['clients']} threads {s['raw_submits_per_s']:.0f} submits/s",
            )
        )
    if p := r.get("progress_latency"):
        rows.append(
            (
                "4. Progress latency, simulator frame to client frame, ms p50 / p95 / p99",
                _pcts(p["latency_ms"]),
                f"{p['matched_frames']} client frames for {p['simulator_progress_frames']} simulator "
                f"frames ({p['steps']} steps x {1000 * p['step_delay_s']:.0f} ms, coalesced to <= 10/s)",
            )
        )
    if k := r.get("cancel_latency"):
        rows.append(
            (
                f"7. Cancel, DELETE to ComfyUI, ms p50 / p99 ({k['rounds']} rounds): "
                "running (/interrupt); prefetched (queue delete)",
                f"{_pcts(k['running_to_interrupt_ms'], ('p50', 'p99'))}; "
                f"{_pcts(k['prefetched_to_queue_delete_ms'], ('p50', 'p99'))}",
                f"heard through the fan-out's lookups, else a poll every {k['cancel_poll_s']:.0f} s; "
                f"visibility heartbeat every {k['heartbeat_interval_s']:.0f} s",
            )
        )
    if c := r.get("cold_start"):
        if "import_floor_ms" in c:
            rows.append(
                (
                    "5. Cold start: API handler import / bare import floor (boto3, FastAPI, Mangum, "
                    "Powertools), ms",
                    f"{c['handlers']['api']['import_ms']:.0f} / {c['import_floor_ms']:.0f}",
                    f"ratio {c['api_import_to_floor']}x (CPU time "
                    f"{c['handlers']['api'].get('import_cpu_ms', 0):.0f} / "
                    f"{c.get('import_floor_cpu_ms', 0):.0f}, "
                    f"{c.get('api_import_cpu_to_floor')}x)" + _without_bytecode(c["handlers"]["api"]),
                )
            )
        for name, h in c["handlers"].items():
            rows.append(
                (
                    f"5. Cold start `{h['module']}`: process / import / first request, ms",
                    f"{h['process_wall_ms']:.0f} / {h['import_ms']:.0f} / {h['first_request_ms']:.0f}",
                    f"median of {h['runs']}" if name else "",
                )
            )
    if cost := r.get("cost"):
        scenarios = ("websocket", "websocket-progress", "polling")
        usd = {k: cost[k]["usd_per_million_jobs"]["total"] for k in scenarios if k in cost}
        rows.append(
            (
                "8. Control-plane cost per million reference jobs (docs/cost.md): one WebSocket "
                "subscriber / one showing progress / polling with Prefer: wait",
                " / ".join(f"${v:.2f}" for v in usd.values()),
                f"{cost['websocket']['jobs']} jobs each; python -m bench.cost_doc renders the doc",
            )
        )
    if t := r.get("steady_state"):
        rows.append(
            (
                f"6. Runner RSS across {t['jobs']} jobs, MiB first / last",
                f"{t['rss_first_kib'] / 1024:.1f} / {t['rss_last_kib'] / 1024:.1f}",
                f"last / first {t['rss_last_to_first']}",
            )
        )
        rows.append(
            (
                f"6. Per job ({t['subscribers_per_job']} subscriber): DynamoDB write requests (items); "
                "@connections posts",
                f"{t['dynamodb_write_requests_per_job']:.2f} ({t['dynamodb_items_written_per_job']:.2f}); "
                f"{t['connection_posts_per_job']:.2f}",
                f"runner's writes {t['runner_dynamodb_write_requests_per_job']:.2f}; posts by caller "
                + ", ".join(f"{k} {v}" for k, v in t["connection_posts_per_job_by_caller"].items()),
            )
        )
    if w := r.get("webhook_latency"):
        rows.append(
            (
                f"8. Webhook: terminal write to the receiver's 2xx, ms p50 / p95 / p99 ({w['jobs']} jobs)",
                _pcts(w["terminal_write_to_2xx_ms"]),
                f"deliveries per event {w['deliveries_per_event']}, events missed {w['events_missed']}, "
                f"signatures verified: {w['all_signatures_verified']}",
            )
        )
    if f := r.get("model_fetch"):
        rows.append(
            (
                f"9. Model fetch from moto, {f['model_mib']} MiB: cache (ranged, parallel, hashed), MiB/s",
                f"{f['cache_fetch_mib_s']}",
                f"plain boto3 get_object {f['plain_boto3_get_object_mib_s']}, "
                f"boto3 download_file {f['boto3_download_file_mib_s']}, "
                f"the cache in one part {f['cache_fetch_one_part_mib_s']}",
            )
        )
        first, second = f["jobs"]
        rows.append(
            (
                "9. A job's models: first job (fetch) / second job (cache hit), models_ms; runner S3 reads",
                f"{first['models_ms']} / {second['models_ms']}",
                f"S3 reads {first['runner_s3_reads']} / {second['runner_s3_reads']}",
            )
        )
    return rows


def markdown(r: dict[str, Any]) -> str:
    m = r["machine"]
    lines = [
        f"Measured {m['date']} ({r['mode']} run, {r['seconds']:.0f} s) on {m['cpu']}, {m['cores']} cores, "
        f"{m['memory_gib']} GiB, {m['os']}, Python {m['python']}.",
        "",
        "| measurement | result | beside it |",
        "|---|---|---|",
    ]
    lines += [f"| {a} | {b} | {c} |" for a, b, c in _main_rows(r)]
    if o := r.get("overhead"):
        lines += ["", "Calls per job on the overhead run (counted at moto; background pollers left out):", ""]
        lines += ["| caller | call | resource | per job |", "|---|---|---|---|"]
        lines += [
            f"| {row['caller']} | {row['operation']} | {row['resource']} | {row['per_job']} |"
            for row in o["calls_per_job"]
            if not row["background"]
        ]
        lines += ["", f"@connections posts per job: {o['connection_posts_per_job']}."]
    if c := r.get("cold_start"):
        heavy = ", ".join(f"{e['module']} {e['cumulative_ms']:.0f}" for e in c["heaviest_imports"])
        lines += ["", f"Heaviest imports across the handlers (cumulative ms): {heavy}."]
    if t := r.get("steady_state"):
        samples = ", ".join(f"{s['jobs']}: {s['rss_kib'] / 1024:.1f}" for s in t["rss_samples"])
        lines += ["", f"Runner RSS samples (jobs: MiB): {samples}."]
    return "\n".join(lines) + "\n"


def _without_bytecode(handler: dict[str, Any]) -> str:
    """The first start's import, which compiled every module (a full run only)."""
    ms = handler.get("import_without_bytecode_ms")
    return f"; without bytecode {ms:.0f}" if ms else ""


def write(results: dict[str, Any], out: Path) -> tuple[Path, Path]:
    out.mkdir(parents=True, exist_ok=True)
    stem = f"bench-{results['mode']}"
    json_path, markdown_path = out / f"{stem}.json", out / f"{stem}.md"
    json_path.write_text(json.dumps(results, indent=2) + "\n")
    markdown_path.write_text(markdown(results))
    return json_path, markdown_path
