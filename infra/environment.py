"""Environments built from the settings models, so CDK and the runtime cannot drift apart.

A process's environment holds only names its settings model reads (``shared.settings.environment_names``)
plus the few that Powertools and the AWS SDK read themselves. The resource names are always required:
their model defaults are the local stack's names and would be wrong in AWS.
"""

from __future__ import annotations

from collections.abc import Mapping

from pydantic_settings import BaseSettings

from shared.names import METRICS_NAMESPACE, SERVICE_NAME, Env
from shared.settings import ResourceSettings, environment_names

# Read by Powertools itself, not by our settings models.
POWERTOOLS_SERVICE_NAME = "POWERTOOLS_SERVICE_NAME"
POWERTOOLS_METRICS_NAMESPACE = "POWERTOOLS_METRICS_NAMESPACE"
LOG_LEVEL = "LOG_LEVEL"
POWERTOOLS_NAMES = frozenset({POWERTOOLS_SERVICE_NAME, POWERTOOLS_METRICS_NAMESPACE, LOG_LEVEL})
# Read by the AWS SDK; Lambda sets it, a container on EC2 must be told.
SDK_NAMES = frozenset({Env.AWS_REGION})


class EnvironmentMismatchError(ValueError):
    """An environment that does not match the settings model it is meant for."""


def setting_env(model: type[BaseSettings], field: str) -> str:
    """The environment name of one setting, refusing a field the model does not have."""
    if field not in model.model_fields:
        raise EnvironmentMismatchError(f"{model.__name__} has no setting {field!r}")
    name = field.upper()
    assert name in environment_names(model)
    return name


def required_names() -> frozenset[str]:
    return frozenset(environment_names(ResourceSettings))


def service_environment(
    model: type[BaseSettings],
    settings: Mapping[str, str],
    *,
    log_level: str,
    sdk: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """``settings`` (env name -> value) checked against ``model``, plus the Powertools names."""
    readable = set(environment_names(model))
    unknown = set(settings) - readable
    if unknown:
        raise EnvironmentMismatchError(f"{model.__name__} does not read {sorted(unknown)}")
    missing = required_names() - set(settings)
    if missing:
        raise EnvironmentMismatchError(f"{model.__name__} needs {sorted(missing)} set in AWS")
    extra = dict(sdk or {})
    if set(extra) - SDK_NAMES:
        raise EnvironmentMismatchError(f"not an SDK setting: {sorted(set(extra) - SDK_NAMES)}")
    environment = {
        POWERTOOLS_SERVICE_NAME: SERVICE_NAME,
        POWERTOOLS_METRICS_NAMESPACE: METRICS_NAMESPACE,
        **extra,
        **settings,
    }
    environment.setdefault(LOG_LEVEL, log_level)
    return environment
