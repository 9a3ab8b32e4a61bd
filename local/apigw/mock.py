"""A MOCK integration, as API Gateway runs one on a WebSocket route: no backend, the status comes from
the request template.

API Gateway evaluates the integration's template selection expression (here a static value: ``\\$default``
is the literal ``$default``), applies the request template it selects (or the ``$default`` one) and reads
``statusCode`` from the result; a template without an integer ``statusCode`` is a configuration error
(the handshake gets a 500). Only static JSON templates are played here: that is all this service uses.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field

DEFAULT_TEMPLATE_KEY = "$default"


@dataclass(frozen=True)
class MockIntegration:
    request_templates: Mapping[str, str] = field(default_factory=dict)
    template_selection_expression: str | None = None

    def __post_init__(self) -> None:
        expression = self.template_selection_expression or ""
        if "${" in expression:
            raise ValueError(f"only a static template selection expression is played, not {expression!r}")
        for key, template in self.request_templates.items():
            try:
                json.loads(template)
            except ValueError:
                raise ValueError(f"request template {key!r} is not static JSON: {template!r}") from None

    def status(self) -> int | None:
        """The integration's status, or None when the selected template gives no integer ``statusCode``."""
        key = (self.template_selection_expression or DEFAULT_TEMPLATE_KEY).removeprefix("\\")
        template = self.request_templates.get(key, self.request_templates.get(DEFAULT_TEMPLATE_KEY))
        if template is None:
            return None
        body = json.loads(template)
        status = body.get("statusCode") if isinstance(body, dict) else None
        return status if isinstance(status, int) and not isinstance(status, bool) else None
