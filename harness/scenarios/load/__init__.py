"""`harness scenarios load`: the scenario files as Locust users (docs/load.md).

Layers, top-down: `options` (what the user asked for, its guard rails), `main` (the process that imports
Locust first — gevent patches the standard library — and runs a local, master or worker runner), `users`
(a Locust `User` class per scenario file: one iteration is one fresh run of the scenario), `collector`
(what a process counts beside Locust's stats: emails, 429s, probe samples), `audits` (run once at the
end over everything the run did) and `report` (JSON, text, Locust's HTML).
"""

import os

# Locust patches the standard library for gevent when it is imported. Only the load process wants that, and
# it patches first, itself (harness/loadproc.py); importing this package anywhere else (a test that imports
# every module, a tool) must not turn that process's threads into greenlets.
os.environ.setdefault("LOCUST_SKIP_MONKEY_PATCH", "1")
