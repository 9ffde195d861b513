"""`python -m harness.emulator --port 4566 --state-file .harness/data/aws/moto-state.pickle`"""

from harness.emulator.cli import main

raise SystemExit(main())
