"""cdk-nag's AwsSolutions pack: zero findings left unacknowledged, every acknowledgement with a real reason."""

from __future__ import annotations

import re
from typing import Any

import pytest
from aws_cdk import Validations
from cdk_nag import AwsSolutionsChecks

from infra.nag import MIN_REASON_LENGTH
from tests.infra.conftest import OPTIONAL_CONTEXT, Synth

pytestmark = pytest.mark.infra

_PLACEHOLDER = re.compile(r"^(n/?a|todo|tbd|none|ok|fine|suppressed|not needed|ignore)\b", re.IGNORECASE)


def _findings(app: Any) -> list[str]:
    report = AwsSolutionsChecks().validate_scope(app)
    return [
        f"{violation.severity} {violation.rule_name} at {resource.construct_path}"
        for violation in report.violations
        for resource in violation.violating_resources
    ]


def _acknowledgements(synth: Synth) -> list[tuple[str, str, str]]:
    """(construct path, rule, reason) for every AwsSolutions acknowledgement in the app (CDK makes others)."""
    found = []
    for construct in synth.app.node.find_all():
        for entry in construct.node.metadata:
            if entry.type == Validations.ACKNOWLEDGED_RULES_METADATA_KEY:
                for rule, reason in entry.data.items():
                    if "AwsSolutions-" in rule:
                        found.append((construct.node.path, rule, reason))
    return found


def test_no_error_or_warning_is_left_unacknowledged(synth: Synth) -> None:
    # The fixture's synthesis already ran cdk-nag as a validation plugin; this lists any finding by name.
    assert _findings(synth.app) == []


def test_every_acknowledgement_gives_a_specific_reason(synth: Synth) -> None:
    acknowledgements = _acknowledgements(synth)
    assert acknowledgements
    for path, rule, reason in acknowledgements:
        assert re.search(r"AwsSolutions-[A-Z]+\d+", rule), (path, rule)
        assert len(reason) >= MIN_REASON_LENGTH, (path, rule, reason)
        assert not _PLACEHOLDER.match(reason.strip()), (path, rule, reason)


def test_acknowledgements_sit_on_the_resources_they_concern_not_the_stack(synth: Synth) -> None:
    stack_path = synth.stack.node.path
    assert all(path != stack_path for path, _, _ in _acknowledgements(synth))


def test_the_optional_features_synthesize_clean_too(optional_synth: Synth) -> None:
    """A web ACL, an alarm topic, several instance types and an existing account role: still no findings."""
    other = optional_synth
    assert _findings(other.app) == []
    other.template.resource_count_is("AWS::WAFv2::WebACLAssociation", 1)
    other.template.resource_count_is("AWS::ApiGateway::Account", 0)
    alarms = other.resources("AWS::CloudWatch::Alarm").values()
    assert any(OPTIONAL_CONTEXT["alarmTopicArn"] in alarm.get("AlarmActions", []) for alarm in alarms)
    group = next(iter(other.resources("AWS::AutoScaling::AutoScalingGroup").values()))
    overrides = group["MixedInstancesPolicy"]["LaunchTemplate"]["Overrides"]
    assert [o["InstanceType"] for o in overrides] == ["g5.xlarge", "g6.xlarge"]
    assert group["NotificationConfigurations"]
