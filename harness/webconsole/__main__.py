"""`python -m harness.webconsole --topology FILE --state-dir DIR --port N`: the console process (uvicorn),
bound to 127.0.0.1 only. `up` starts it (harness/webconsole/component.py); run by hand only to debug."""

from __future__ import annotations

import argparse
import os

from harness.webconsole.component import HOST

# The console is a side window, never on the critical path: while `up` starts everything at once on a
# machine with few cores, the backend, worker and emulator (what `up` waits for) get the CPU first.
NICENESS = 10


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m harness.webconsole")
    parser.add_argument("--topology", required=True)
    parser.add_argument("--env", default="local")
    parser.add_argument("--state-dir", required=True)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    os.nice(NICENESS)

    import uvicorn

    from harness.webconsole.app import create_app

    app = create_app(args.topology, args.state_dir, args.env, port=args.port)
    uvicorn.run(app, host=HOST, port=args.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
