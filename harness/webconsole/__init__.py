"""The local web console: one page that shows what the app did — mail, objects, rows per tenant, keys, users,
tasks — and a JSON twin of every page under `/api/`.

- `component.py`: `ConsoleService`, the console as a component of the local stack (`up` starts it, `status`
  lists it as `console`, `down` stops it), bound to 127.0.0.1;
- `views.py`: what each page shows, read with the same functions as the CLI and the scenario probes;
- `app.py`: the ASGI app (FastAPI + Jinja2 templates, live mail over server-sent events);
- `celery_inspect.py`: Celery's inspect API, run with the worker's env contract.

Named `webconsole` because `harness.console` is the terminal output module. See docs/console.md.
"""
