#!/usr/bin/env python3
"""An SMTP server for the tests (aiosmtpd), on 127.0.0.1 and a free port.

Every message it accepts is kept in --dir as NNNN.eml (the raw source, byte for byte)
with NNNN.json beside it (envelope sender, recipients, the client's port = which
connection carried it). events.log gets one line per connection, RSET and message.
Prints the port on the first line of stdout once it listens.

Options: --tls-cert/--tls-key offer STARTTLS (required before MAIL), or with --implicit-tls
serve TLS from the first byte; --auth requires AUTH (PLAIN, LOGIN) with the login and
password of the environment's SMTP_TEST_LOGIN and SMTP_TEST_PASSWORD; recipients
containing "refused" get 550; --close-after-message drops each connection after its
message, as a server closing an idle connection does.
"""

import argparse
import asyncio
import json
import os
import ssl
import sys

from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword


class Keeper:
    def __init__(self, folder, close_after_message):
        self.folder = folder
        self.count = 0
        self.close_after_message = close_after_message

    def event(self, text):
        with open(os.path.join(self.folder, "events.log"), "a") as f:
            f.write(text + "\n")

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if "refused" in address:
            return f"550 5.1.1 <{address}>: Recipient address rejected: User unknown"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_RSET(self, server, session, envelope):
        self.event(f"RSET {session.peer[1]}")
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.count += 1
        base = os.path.join(self.folder, f"{self.count:04d}")
        with open(base + ".json", "w") as f:
            json.dump(
                {
                    "from": envelope.mail_from,
                    "to": envelope.rcpt_tos,
                    "peer": session.peer[1],
                    "tls": session.ssl is not None
                    or server.transport.get_extra_info("ssl_object") is not None,
                    "login": session.auth_data.login.decode()
                    if isinstance(session.auth_data, LoginPassword)
                    else None,
                },
                f,
            )
        # The .eml last: a test that sees it sees the whole message.
        with open(base + ".tmp", "wb") as f:
            f.write(envelope.original_content)
        os.rename(base + ".tmp", base + ".eml")
        self.event(f"MESSAGE {session.peer[1]}")
        if self.close_after_message:
            asyncio.get_event_loop().call_later(0.05, server.transport.close)
        return "250 2.0.0 Ok: queued"


def authenticator(login, password):
    def check(server, session, envelope, mechanism, auth_data):
        ok = (
            isinstance(auth_data, LoginPassword)
            and auth_data.login.decode() == login
            and auth_data.password.decode() == password
        )
        # handled=False: aiosmtpd answers a failure with 535 itself.
        return AuthResult(success=ok, handled=False, auth_data=auth_data if ok else None)

    return check


async def main():
    p = argparse.ArgumentParser()
    p.add_argument("--dir", required=True)
    p.add_argument("--tls-cert")
    p.add_argument("--tls-key")
    p.add_argument("--implicit-tls", action="store_true")
    p.add_argument("--auth", action="store_true")
    p.add_argument("--close-after-message", action="store_true")
    args = p.parse_args()

    keeper = Keeper(args.dir, args.close_after_message)
    context = None
    if args.tls_cert:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(args.tls_cert, args.tls_key)
    options = {"hostname": "mx.test", "enable_SMTPUTF8": True}
    if context and not args.implicit_tls:
        options.update(tls_context=context, require_starttls=True)
    if args.auth:
        options.update(
            auth_required=True,
            # aiosmtpd counts only STARTTLS as TLS: with implicit TLS the
            # connection is encrypted from the start anyway.
            auth_require_tls=context is not None and not args.implicit_tls,
            authenticator=authenticator(
                os.environ["SMTP_TEST_LOGIN"], os.environ["SMTP_TEST_PASSWORD"]
            ),
        )

    def connection():
        keeper.event("CONNECT")
        return SMTP(keeper, **options)

    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        connection,
        "127.0.0.1",
        0,
        ssl=context if args.implicit_tls else None,
    )
    print(server.sockets[0].getsockname()[1], flush=True)
    # Ends with the test: its stdin is closed when the test drops the server.
    await loop.run_in_executor(None, sys.stdin.read)


if __name__ == "__main__":
    asyncio.run(main())
