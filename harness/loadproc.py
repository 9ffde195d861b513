"""The load process's entry: `python -m harness.loadproc --options JSON [--worker]` (harness/scenarios/load).

Locust runs on gevent, which must patch the standard library before anything imports `ssl` or `socket`;
this module lives outside `harness.scenarios` (whose package imports them) so that the patch comes first.
Importing it does nothing: the patch happens only when it runs as the program.
"""

import sys


def run() -> None:
    from gevent import monkey

    monkey.patch_all()
    from harness.scenarios.load.main import main

    sys.exit(main())


if __name__ == "__main__":
    run()
