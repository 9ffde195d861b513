"""`python -m harness.deploy.standin --port P [--account-id ID]`: the AWS stand-in in the foreground."""

from __future__ import annotations

import argparse
import os
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness.deploy.standin", description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument(
        "--account-id", help="the account STS answers for (default: MOTO_ACCOUNT_ID or moto's)"
    )
    args = parser.parse_args(argv)
    if args.account_id:
        os.environ["MOTO_ACCOUNT_ID"] = args.account_id  # moto reads it when its backends are first built
    from harness.deploy.standin.patches import install

    install()
    from moto.server import main as moto_main

    sys.argv = ["moto_server", "-p", str(args.port), "-H", args.host]
    moto_main()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
