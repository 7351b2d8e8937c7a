"""A writer process for the crash tests: saves issues and prints each id once its save has returned."""

import sys

from fieldkit.register import Register
from fieldkit.store import Store

home, start = sys.argv[1], int(sys.argv[2])
register = Register(Store(home, compact_bytes=40_000), author="crash test")
for n in range(start, start + 100_000):
    values = register.create_issue({"municipality": "BUF", "sector": "water", "title": f"Issue {n}", "ward": 1 + n % 50})
    if n % 3 == 0:
        register.add_note(values["id"], f"note on {n}")
    print(values["id"], flush=True)
