#!/usr/bin/env python3
"""A real SMTP server for karajo's notification tests, on 127.0.0.1.

    smtp_server.py --out DIR [--port N] [--mode plain|starttls|tls]
                   [--cert PEM --key PEM] [--auth]

Listens on --port (0: any free port) and prints "READY <port>" on stdout once it
accepts connections. Every message received is written to DIR as <n>.json (written to
a temporary name, then renamed) holding the envelope, the raw message, its headers,
its decoded body, the AUTH mechanism and credentials used (if any) and whether the
session was encrypted.

Modes: plain (no TLS), starttls (STARTTLS offered and required before MAIL), tls
(implicit TLS from the first byte). --auth offers AUTH PLAIN and LOGIN and accepts
any credentials (they are recorded), also without TLS.
"""

import argparse
import asyncio
import email
import email.policy
import json
import os
import ssl
import sys
import warnings

from aiosmtpd.smtp import SMTP, AuthResult


class Recorder:
    def __init__(self, out):
        self.out = out
        self.count = 0

    async def handle_DATA(self, server, session, envelope):
        self.count += 1
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        record = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "data": envelope.content.decode("utf-8", "replace"),
            "headers": {name: str(value) for name, value in message.items()},
            "body": message.get_content(),
            "auth": session.auth_data,
            "tls": session.ssl is not None
            or server.transport.get_extra_info("ssl_object") is not None,
        }
        path = os.path.join(self.out, "%d.json" % self.count)
        with open(path + ".tmp", "w") as f:
            json.dump(record, f)
        os.rename(path + ".tmp", path)
        return "250 OK"


def text(value):
    return value.decode() if isinstance(value, bytes) else value


def accept_any(server, session, envelope, mechanism, auth_data):
    record = {
        "mechanism": mechanism,
        "login": text(auth_data.login),
        "password": text(auth_data.password),
    }
    return AuthResult(success=True, auth_data=record)


async def main():
    # aiosmtpd itself sets the deprecated Session.login_data; keep the output clean.
    warnings.filterwarnings("ignore", message="Session.login_data")
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", required=True)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--mode", choices=["plain", "starttls", "tls"], default="plain")
    parser.add_argument("--cert")
    parser.add_argument("--key")
    parser.add_argument("--auth", action="store_true")
    args = parser.parse_args()

    context = None
    if args.mode != "plain":
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(args.cert, args.key)

    recorder = Recorder(args.out)

    def factory():
        kwargs = {
            "hostname": "karajo-test-smtp",
            "auth_require_tls": False,
            "authenticator": accept_any if args.auth else None,
        }
        if not args.auth:
            kwargs["auth_exclude_mechanism"] = ["PLAIN", "LOGIN"]
        if args.mode == "starttls":
            kwargs["tls_context"] = context
            kwargs["require_starttls"] = True
        return SMTP(recorder, **kwargs)

    loop = asyncio.get_running_loop()
    ssl_context = context if args.mode == "tls" else None
    server = await loop.create_server(
        factory, host="127.0.0.1", port=args.port, ssl=ssl_context, reuse_address=True
    )
    port = server.sockets[0].getsockname()[1]
    print("READY %d" % port, flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        sys.exit(0)
