"""Schemathesis hooks for Hookline's API run (loaded through SCHEMATHESIS_HOOKS).

An Idempotency-Key replays the first answer for the same token and path, and
a key reused with another body is refused (422), as DESIGN.md says. A
generator cannot know which of its requests are "the same request", so each
request gets a fresh key; a key the generator made invalid on purpose (a
negative case) is sent as it is, so its rejection is still checked.
"""

import re
import uuid

import schemathesis

VALID_KEY = re.compile(r"^[\x21-\x7e]{1,256}$")


def fresh_keys(headers):
    for name in list(headers or {}):
        if name.lower() == "idempotency-key" and isinstance(headers[name], str) and VALID_KEY.match(headers[name]):
            headers[name] = uuid.uuid4().hex


@schemathesis.hook
def before_call(context, case, kwargs):
    # A case that leaves a header out on purpose is sent untouched: editing
    # it would make schemathesis send the headers it means to leave out.
    data = getattr(getattr(case.meta, "phase", None), "data", None)
    if getattr(getattr(data, "scenario", None), "name", "") == "MISSING_PARAMETER":
        return
    fresh_keys(case.headers)
