"""docs/cost.md is what the counted run beside it renders: the doc cannot drift from the run, the price
table or the renderer without this failing (``make cost-doc`` regenerates both)."""

from __future__ import annotations

import copy
import json
from typing import Any

from bench.cost_doc import DOC, RUN, render
from bench.prices import PRICES


def _run() -> dict[str, Any]:
    return dict(json.loads(RUN.read_text()))


def test_the_committed_doc_is_rendered_from_the_committed_run() -> None:
    assert DOC.read_text() == render(_run()), "run `python -m bench.cost_doc` after changing the model"


def test_the_doc_states_the_figures_of_the_run_it_is_rendered_from() -> None:
    run = _run()
    changed = copy.deepcopy(run)
    changed["cost"]["websocket"]["usd_per_million_jobs"]["total"] = 12.34
    changed["cost"]["websocket"]["units_per_job"]["rest_requests"] = 7.0
    text = render(changed)
    assert "**$12.34 per million reference jobs with one WebSocket subscriber**" in text
    assert "| API Gateway REST requests | 7 |" in text
    assert f"${run['before']['websocket']:.2f}" in text


def test_every_priced_unit_has_a_row() -> None:
    text = render(_run())
    for _, label in PRICES.values():
        assert f"| {label} |" in text
