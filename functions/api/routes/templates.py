"""/v1/templates: the named, parameterised workflows this deployment offers."""

from __future__ import annotations

from fastapi import APIRouter

from functions.api.problems import PROBLEM
from functions.api.schemas import TemplateInfo, TemplateList
from shared.templates import Template, get_template, load_templates

router = APIRouter(prefix="/v1/templates", tags=["templates"])


def _info(template: Template) -> TemplateInfo:
    return TemplateInfo(name=template.name, description=template.description, parameters=template.schema())


@router.get("", response_model=TemplateList)
def list_templates() -> TemplateList:
    """Every template, with the JSON Schema of its params."""
    return TemplateList(items=[_info(t) for t in load_templates().values()])


@router.get("/{name}", response_model=TemplateInfo, responses={404: PROBLEM})
def describe_template(name: str) -> TemplateInfo:
    """One template and the JSON Schema of its params: submit it as {"template": name, "params": {...}}."""
    return _info(get_template(name))
