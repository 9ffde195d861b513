"""The load process's entry: `python -m harness.loadproc --options JSON [--worker]` (harness/scenarios/load).

Locust runs on gevent, which must patch the standard library before anything imports `ssl` or `socket`;
this module lives outside `harness.scenarios` (whose package imports them) so that the patch comes first.
"""

from gevent import monkey

monkey.patch_all()

import sys  # noqa: E402

import locust  # noqa: E402, F401  (it patches again: before anything below imports ssl)

from harness.scenarios.load.main import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
