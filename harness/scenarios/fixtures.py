"""The objects behind the pytest fixtures `tenant_factory` and `inbox`, for Python tests.

```python
def test_order_mail(tenant_factory, api_client, inbox):
    shop = tenant_factory("shop", users={"owner": "owner", "buyer": "member"})
    admin = api_client.as_actor(shop["owner"], tenant=shop)
    assert admin.post("/api/v1/catalog", json={...}).status_code == 201
    mail = inbox.wait_for(shop["buyer"], subject_contains="Order", within=15)
```
"""

from __future__ import annotations

from collections.abc import Mapping

from harness.errors import ScenarioError
from harness.readiness import NotYet, WaitTimeout, wait_for
from harness.scenarios.actors import Actor, ActorFactory, TenantHandle
from harness.scenarios.probes.email import Inbox, Mail
from harness.scenarios.runner import ScenarioSession, new_run_id


class TenantFactory:
    """Fresh tenants and users for one test (unique ids), removed when the test ends."""

    def __init__(self, session: ScenarioSession) -> None:
        self.run_id = new_run_id()
        self._factory: ActorFactory = session.actors(self.run_id)
        self._used: set[str] = set()

    def __call__(
        self, key: str = "tenant", *, users: Mapping[str, str] | None = None, name: str | None = None
    ) -> TenantHandle:
        """A tenant `<key>-<run id>`; `users` maps user key -> role (default: one owner, `owner`).

        Asking for the same key twice gives a second tenant (`<key>2-<run id>`), not the first one again.
        """
        base, n = key, 1
        while key in self._used:
            n += 1
            key = f"{base}{n}"
        self._used.add(key)
        members = {user: (role, None) for user, role in (users or {"owner": "owner"}).items()}
        return self._factory.tenant(key, name=name, users=members)

    def user(self, key: str = "user", *, name: str | None = None) -> Actor:
        """A Cognito user with no membership."""
        return self._factory.user(key, name=name)

    def cleanup(self) -> list[str]:
        return self._factory.cleanup()


class ActorInbox:
    """The target's email probe, addressed by actor."""

    def __init__(self, inbox: Inbox) -> None:
        self.inbox = inbox

    def messages(self, to: Actor | str) -> list[Mail]:
        return self.inbox.messages(to.email if isinstance(to, Actor) else to)

    def wait_for(self, to: Actor | str, *, subject_contains: str = "", within: float = 15.0) -> Mail:
        """The first message to `to` whose subject contains `subject_contains` (polling up to `within` s)."""
        address = to.email if isinstance(to, Actor) else to

        def arrived() -> Mail | NotYet:
            messages = self.inbox.messages(address)
            found = [m for m in messages if subject_contains in m.subject]
            return found[0] if found else NotYet(f"subjects seen: {[m.subject for m in messages] or 'none'}")

        try:
            return wait_for(
                f"an email to {address} with {subject_contains!r} in the subject", arrived, timeout=within,
                max_interval=1.0,
            )  # fmt: skip
        except WaitTimeout as exc:
            raise ScenarioError(exc.message) from exc
