"""cfn-lint over the synthesized template: zero errors (warnings are CDK's own style)."""

from __future__ import annotations

import json

import pytest
from cfnlint.api import lint

from tests.infra.conftest import Synth

pytestmark = pytest.mark.infra


def test_cfn_lint_reports_no_errors(synth: Synth) -> None:
    matches = lint(json.dumps(synth.json), regions=["us-east-1", "eu-west-1"])
    errors = [
        f"{m.rule.id} {m.message} ({'/'.join(map(str, m.path))})"
        for m in matches
        if m.rule.id.startswith("E")
    ]
    assert errors == []
