"""`parcours preferences link --identifier TYPE:VALUE [--ttl 30d]`: one person's signed link.

It prints one line, the URL of the person's preference page under PARCOURS_PREFERENCES_URL. The
token names the identifier as parcours stores it (email and phone hashed) and an expiry, signed
with PARCOURS_PREFERENCES_SECRET (streams/centre/tokens.py). Nothing is looked up: a link can be
made for someone parcours has not seen yet.
"""
from __future__ import annotations

import os
import time

from streams.cli.common import CliError

MAX_TTL_MS = 366 * 86_400_000


def add_parser(sub) -> None:
    p = sub.add_parser("preferences", help="the preference centre's signed links")
    what = p.add_subparsers(dest="action", required=True)
    link = what.add_parser("link", help="print one person's signed, expiring link")
    link.add_argument("--identifier", required=True,
                      help="TYPE:VALUE, e.g. email:martin@example.com or loyalty:L-77")
    link.add_argument("--ttl", default="30d", help="how long the link works (default 30d; at "
                                                   "most 366d)")
    link.set_defaults(func=run_link)


def run_link(args) -> int:
    from streams.centre import settings
    from streams.centre.tokens import sign
    from streams.cli.profile import parse_identifier
    from streams.preferences.config import parse_duration

    try:
        ttl = parse_duration(args.ttl)
    except ValueError as exc:
        raise CliError(f"--ttl: {exc}") from None
    if not 0 < ttl <= MAX_TTL_MS:
        raise CliError(f"--ttl {args.ttl}: between 1s and 366d")
    secret = settings.secret(os.environ)
    base = settings.public_url(os.environ)
    kind, value = parse_identifier(args.identifier)
    try:
        token = sign(f"{kind}:{value}", int(time.time() + ttl / 1000), secret)
    except ValueError as exc:
        raise CliError(f"--identifier: {exc}") from None
    print(f"{base}/p/{token}")
    return 0
