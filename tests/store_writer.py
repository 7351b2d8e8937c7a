"""A writer process for the crash tests: saves and prints each id once its save has returned.

``issues`` saves issues (a note on every third), ``import`` saves batches of 50 in one transaction,
``backup`` makes backups over and over, ``pull`` applies pages of operations as a sync pull does.
"""

import sys

from fieldkit.register import Register

home, start, what = sys.argv[1], int(sys.argv[2]), sys.argv[3]
register = Register.open(home, author="crash test")


def issue_fields(n: int) -> dict:
    return {"municipality": "BUF", "sector": "water", "title": f"Issue {n}", "ward": 1 + n % 50}


if what == "backup":
    print(register.create_issue(issue_fields(start))["id"], flush=True)
    while True:
        register.store.backup()
elif what == "pull":
    import tempfile

    with Register.open(tempfile.mkdtemp(), author="elsewhere") as other:
        for n in range(start, start + 100_000):
            created = [other.create_issue(issue_fields(n * 10 + k))["id"] for k in range(10)]
            register.apply_remote(other.pending_ops(), {"cursor": n})
            other.acknowledge(op["op_id"] for op in other.pending_ops())
            print(*created, flush=True)
elif what == "import":
    for n in range(start, start + 100_000, 50):
        with register.store.transaction():
            created = [register.create_issue(issue_fields(k))["id"] for k in range(n, n + 50)]
        print(*created, flush=True)
else:
    for n in range(start, start + 100_000):
        values = register.create_issue(issue_fields(n))
        if n % 3 == 0:
            register.add_note(values["id"], f"note on {n}")
        print(values["id"], flush=True)
