"""Named crash points, for the tests only.

When the environment variable ``ECASH_MERCHANT_CRASH_AT`` names a point, the
process kills itself with SIGKILL there (no clean-up, no flush): this is how
the tests show that a terminal killed between verifying a payment and
answering loses nothing and stores nothing twice. Unset, a point costs one
dictionary lookup.

Points: ``accept:verified`` (payment verified, nothing stored yet),
``accept:before_commit`` (inside the storing transaction),
``accept:stored`` (committed: paid, or pending above the floor limit; not yet
answered), ``accept:deposited`` (the bank answered a pending payment's online
deposit, its verdicts are not recorded yet), ``deposit:answered`` (the bank
answered a deposit, its verdicts are not recorded yet).
"""

from __future__ import annotations

import os
import signal

ENV = "ECASH_MERCHANT_CRASH_AT"


def point(name: str) -> None:
    if os.environ.get(ENV) == name:
        os.kill(os.getpid(), signal.SIGKILL)
