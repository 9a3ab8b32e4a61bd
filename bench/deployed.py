"""What a default ``cdk deploy`` sets, read from the synthesized template: the cost run runs with it."""

from __future__ import annotations

from typing import Any

# The runner container's settings that name places in AWS (its ComfyUI, folders, endpoints): the local
# stack sets its own; every other literal setting of the template is what the runner runs with here.
_PLACES = ("_URL", "_DIR", "_URI")


def deployed_runner_env(template: dict[str, Any] | None = None) -> dict[str, str]:
    """The settings a default ``cdk deploy`` gives the runner container (visibility timeout, log level,
    ...), from the synthesized template: the local stack's own (a 30 s visibility) would count lease
    renewals and visibility changes a deployed runner never makes."""
    template = template if template is not None else _template()
    for resource in template["Resources"].values():
        if resource["Type"] != "AWS::ECS::TaskDefinition":
            continue
        for container in resource["Properties"]["ContainerDefinitions"]:
            if container["Name"] == "runner":
                return {
                    e["Name"]: e["Value"]
                    for e in container.get("Environment", [])
                    if isinstance(e["Value"], str) and not e["Name"].endswith(_PLACES)
                }
    raise ValueError("the template has no runner container")


def deployed_function_env(handler: str, template: dict[str, Any] | None = None) -> dict[str, str]:
    """The literal settings the template gives the function whose handler is ``handler`` (for the API:
    its ``Prefer: wait`` ceiling, 5 s deployed against 20 s locally)."""
    template = template if template is not None else _template()
    for resource in template["Resources"].values():
        props = resource.get("Properties", {})
        if resource["Type"] == "AWS::Lambda::Function" and props.get("Handler") == handler:
            variables = props.get("Environment", {}).get("Variables", {})
            return {k: v for k, v in variables.items() if isinstance(v, str)}
    raise ValueError(f"the template has no function {handler}")


def _template() -> dict[str, Any]:
    from local.iam.template import synthesized_template

    return synthesized_template()
