"""The emulator imports moto's EC2 only when something uses it (harness/emulator/lazy_ec2.py): SSM, which the
stack uses, loads without it; EC2 itself still works, through the same registry. Each case runs in a fresh
interpreter (the point is what gets imported)."""

from __future__ import annotations

import subprocess
import sys
import textwrap


def run(code: str) -> str:
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_ssm_and_the_other_services_of_the_stack_load_without_ec2() -> None:
    out = run(
        """
        import sys
        from harness.emulator import lazy_ec2
        assert lazy_ec2.install()
        from harness.emulator.app import create_moto_app
        from harness.emulator.config import PREWARM_SERVICES
        app = create_moto_app()
        for service in PREWARM_SERVICES:
            app.create_app(service)
        from moto.ssm.models import ssm_backends
        ssm = ssm_backends["000000000000"]["me-south-1"]
        ssm.put_parameter(name="/p", description="", value="v", parameter_type="String", allowed_pattern=None,
                          keyid=None, overwrite=True, tags=[], data_type="text", tier=None, policies=None)
        print(ssm.get_parameter("/p").value, "moto.ec2.models" in sys.modules)
        """
    )
    assert out == "v False"


def test_ec2_still_works_through_the_one_real_registry() -> None:
    out = run(
        """
        import sys
        from harness.emulator import lazy_ec2
        lazy_ec2.install()
        import moto.ssm.models  # binds the stand-in, as in the emulator
        from moto.core.base_backend import BackendDict
        from harness.emulator.app import create_moto_app
        create_moto_app().create_app("ec2")  # moto's dispatcher: isinstance(..., BackendDict)
        import moto.ec2
        real = moto.ec2.models.ec2_backends
        stand_in = moto.ssm.models.ec2_backends
        vpc = stand_in["000000000000"]["me-south-1"].create_vpc("10.9.0.0/16")
        ids = [v.id for v in real["000000000000"]["me-south-1"].describe_vpcs()]
        print(isinstance(stand_in, BackendDict), type(real).__name__, vpc.id in ids, "me-south-1" in stand_in["000000000000"])
        """
    )
    assert out == "True BackendDict True True"


def test_install_leaves_an_already_imported_ec2_alone() -> None:
    out = run(
        """
        import moto.ec2
        from harness.emulator import lazy_ec2
        print(lazy_ec2.install(), type(moto.ec2.ec2_backends).__name__)
        """
    )
    assert out == "False BackendDict"
