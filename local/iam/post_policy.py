"""S3's checks of a browser-style form upload (a presigned POST): its signed policy, then its conditions.

moto stores whatever a form upload sends; S3 refuses a form whose policy is expired, not signed by the
credential it names, or not met by the fields and the file (``content-length-range`` among them).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any


class PolicyRefused(Exception):
    def __init__(self, code: str, message: str, status: int) -> None:
        super().__init__(message)
        self.code = code
        self.status = status


def _signing_key(secret: str, date: str, region: str, service: str) -> bytes:
    key = ("AWS4" + secret).encode()
    for part in (date, region, service, "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return key


def _denied(message: str) -> PolicyRefused:
    return PolicyRefused("AccessDenied", message, 403)


# Fields S3 does not require a condition for.
_EXEMPT = {"x-amz-signature", "file", "policy"}


def check_post(
    form: Mapping[str, str], file_size: int, bucket: str, secret: str, now: datetime | None = None
) -> None:
    """Raises PolicyRefused unless S3 would store this form upload."""
    fields = {name.lower(): value for name, value in form.items()}
    encoded = fields.get("policy", "")
    credential = fields.get("x-amz-credential", "").split("/")
    if not encoded or len(credential) != 5:
        raise _denied("a form upload needs a policy and an x-amz-credential")
    _, date, region, service, _ = credential
    expected = hmac.new(
        _signing_key(secret, date, region, service), encoded.encode(), hashlib.sha256
    ).hexdigest()
    if not hmac.compare_digest(expected, fields.get("x-amz-signature", "")):
        raise PolicyRefused(
            "SignatureDoesNotMatch",
            "The request signature we calculated does not match the signature you provided.",
            403,
        )
    try:
        policy: dict[str, Any] = json.loads(base64.b64decode(encoded))
        expires = datetime.fromisoformat(policy["expiration"].replace("Z", "+00:00"))
    except (ValueError, KeyError, TypeError):
        raise PolicyRefused(
            "InvalidPolicyDocument", "Invalid Policy: the policy is not valid JSON", 400
        ) from None
    if (now or datetime.now(UTC)) > expires:
        raise _denied("Invalid according to Policy: Policy expired.")
    covered = set()
    values = {**fields, "bucket": bucket}
    for condition in policy.get("conditions", []):
        if isinstance(condition, dict):
            ((name, wanted),) = condition.items()
            operator, name = "eq", name.lower()
        else:
            operator, name, wanted = condition[0].lower(), str(condition[1]).lower(), condition[2]
            if operator == "content-length-range":
                low, high = int(condition[1]), int(condition[2])
                if file_size > high:
                    raise PolicyRefused(
                        "EntityTooLarge", "Your proposed upload exceeds the maximum allowed size", 400
                    )
                if file_size < low:
                    raise PolicyRefused(
                        "EntityTooSmall", "Your proposed upload is smaller than the minimum allowed size", 400
                    )
                continue
            name = name.removeprefix("$")
        covered.add(name)
        got = values.get(name, "")
        held = got == wanted if operator == "eq" else got.startswith(str(wanted))
        if not held:
            raise _denied(
                f'Invalid according to Policy: Policy Condition failed: ["{operator}", "${name}", "{wanted}"]'
            )
    extra = sorted(set(fields) - covered - _EXEMPT - {n for n in fields if n.startswith("x-ignore-")})
    if extra:
        raise _denied(f"Invalid according to Policy: Extra input fields: {', '.join(extra)}")
