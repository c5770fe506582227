"""Interop peer for tests/python_interop.rs.

Driven by the Rust test over stdin/stdout with a line protocol; every text
field is base64 so ids and bodies can hold any unicode (tabs, newlines, ...).

Phase 1, Python signs (stdout):
    case <lib> <secret> <id> <timestamp> <body> <signature-header> <expect>
    ...
    end
  <lib> is "standardwebhooks" or "svix": which library signed it, and so which
  header set (webhook-* or svix-*) the Rust side should present.
  <expect> is "valid", or "invalid" for a tampered body.

Phase 2, Rust signs (stdin, read to "end" before anything is written back):
    case <secret> <id> <timestamp> <body> <signature-header> <expect>
    ...
    end
  Python verifies each case with both libraries and answers (stdout):
    result <index> <lib> <ok|rejected|error> <message>
    ...
    end

Usage: python interop.py <cases-per-library> <seed>
"""

import base64
import random
import sys
from datetime import datetime, timezone
from importlib.metadata import version

import standardwebhooks
import svix.webhooks


def b64(data):
    if isinstance(data, str):
        data = data.encode("utf-8")
    return base64.b64encode(data).decode("ascii")


def unb64(text):
    return base64.b64decode(text)


def rand_char(rng):
    r = rng.random()
    if r < 0.55:
        cp = rng.randint(0x20, 0x7E)
    elif r < 0.60:
        cp = rng.randint(0x00, 0x1F)
    elif r < 0.80:
        cp = rng.randint(0xA0, 0xD7FF)
    elif r < 0.93:
        cp = rng.randint(0xE000, 0xFFFD)
    else:
        cp = rng.randint(0x10000, 0x10FFFF)
    return chr(cp)


def rand_text(rng, n):
    return "".join(rand_char(rng) for _ in range(n))


def rand_big_text(rng, n):
    # Fast path for ~1 MB bodies: random picks from a mixed alphabet.
    alphabet = [rand_char(rng) for _ in range(512)]
    return "".join(rng.choices(alphabet, k=n))


def rand_body(rng, i):
    if i % 50 == 7:
        return rand_big_text(rng, rng.randint(900_000, 1_100_000))
    kind = rng.random()
    if kind < 0.1:
        return ""
    if kind < 0.4:
        return '{"type":"%s","data":{"n":%d}}' % (rand_text(rng, 8).replace('"', "'"), rng.randint(0, 10**9))
    return rand_text(rng, rng.randint(1, 2000))


def rand_id(rng):
    if rng.random() < 0.7:
        return "msg_" + "".join(rng.choices("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", k=27))
    text = rand_text(rng, rng.randint(1, 40))
    return text if text.strip() else "x" + text


def rand_secret(rng):
    raw = bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 64)))
    encoded = base64.b64encode(raw).decode("ascii")
    style = rng.random()
    if style < 0.6:
        return "whsec_" + encoded
    if style < 0.8:
        return encoded
    return "whsec_" + encoded.rstrip("=")


def send(line):
    sys.stdout.write(line + "\n")


def phase1(rng, n):
    libs = {
        "standardwebhooks": standardwebhooks.Webhook,
        "svix": svix.webhooks.Webhook,
    }
    for lib, cls in libs.items():
        for i in range(n):
            secret = rand_secret(rng)
            msg_id = rand_id(rng)
            ts = rng.randint(0, 4_000_000_000)
            body = rand_body(rng, i)
            when = datetime.fromtimestamp(ts, tz=timezone.utc)
            sig = cls(secret).sign(msg_id, when, body)
            if i % 5 == 1:
                # Key rotation: an old key's signature first, ours second.
                other = cls(rand_secret(rng)).sign(msg_id, when, body)
                sig = other + " " + sig
            send("\t".join(["case", lib, b64(secret), b64(msg_id), str(ts), b64(body), b64(sig), "valid"]))
            if i % 20 == 3:
                # Must fail: the same signature over a tampered body.
                tampered = body + "!" if body else "x"
                send("\t".join(["case", lib, b64(secret), b64(msg_id), str(ts), b64(tampered), b64(sig), "invalid"]))
    send("end")
    sys.stdout.flush()


def phase2():
    cases = []
    for line in sys.stdin:
        fields = line.rstrip("\n").split("\t")
        if fields[0] == "end":
            break
        _, secret, msg_id, ts, body, sig, expect = fields
        cases.append((unb64(secret).decode(), unb64(msg_id).decode(), ts, unb64(body).decode("utf-8"), unb64(sig).decode(), expect))

    for index, (secret, msg_id, ts, body, sig, expect) in enumerate(cases):
        checks = [
            ("standardwebhooks", lambda: standardwebhooks.Webhook(secret).verify(
                body, {"webhook-id": msg_id, "webhook-timestamp": ts, "webhook-signature": sig}, json_parse=False)),
            ("svix", lambda: svix.webhooks.Webhook(secret).verify(
                body, {"svix-id": msg_id, "svix-timestamp": ts, "svix-signature": sig})),
        ]
        for lib, check in checks:
            try:
                check()
                outcome, message = "ok", ""
            except standardwebhooks.WebhookVerificationError as e:
                outcome, message = "rejected", str(e)
            except Exception as e:  # noqa: BLE001 - reported to the Rust side
                outcome, message = "error", "%s: %s" % (type(e).__name__, e)
            send("\t".join(["result", str(index), lib, outcome, b64(message)]))
    send("end")
    sys.stdout.flush()


def main():
    n = int(sys.argv[1])
    rng = random.Random(int(sys.argv[2]))
    sys.stderr.write(
        "interop.py: standardwebhooks %s, svix %s, python %s\n"
        % (version("standardwebhooks"), version("svix"), sys.version.split()[0])
    )
    phase1(rng, n)
    phase2()


if __name__ == "__main__":
    main()
