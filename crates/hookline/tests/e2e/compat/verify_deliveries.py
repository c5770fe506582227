"""Verifies recorded Hookline deliveries with the official Python libraries.

Input: a JSON file of cases {secret, headers, body_b64}. Every case must pass
both `standardwebhooks` and `svix` verification (which also enforce the
five-minute timestamp tolerance); a tampered copy of each must fail.
"""
import base64
import json
import sys

import standardwebhooks
from svix.webhooks import Webhook as SvixWebhook, WebhookVerificationError


def main() -> int:
    cases = json.load(open(sys.argv[1]))
    failures = 0
    for i, case in enumerate(cases):
        body = base64.b64decode(case["body_b64"])
        headers = case["headers"]
        for name, verifier in (
            ("standardwebhooks", standardwebhooks.Webhook(case["secret"])),
            ("svix", SvixWebhook(case["secret"])),
        ):
            try:
                verifier.verify(body, headers)
            except Exception as e:  # noqa: BLE001 - report any failure
                failures += 1
                print(f"case {i}: {name} rejected a genuine delivery: {e!r}")
            try:
                verifier.verify(body + b" ", headers)
                failures += 1
                print(f"case {i}: {name} accepted a tampered body")
            except (standardwebhooks.webhooks.WebhookVerificationError, WebhookVerificationError):
                pass
    if failures:
        print(f"{failures} failures")
        return 1
    print(f"{len(cases)} verified")
    return 0


if __name__ == "__main__":
    sys.exit(main())
