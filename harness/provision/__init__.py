"""Apply the topology to whatever backend answers (embedded or Docker): same code, idempotent.

`harness.provision.apply.provision()` does it; `harness.provision.outputs` holds what it leaves in the
state dir. This package's `__init__` stays empty so that importing the light parts stays light.
"""
