"""An editor process for the concurrency tests: edits one field of one issue again and again.

Prints each value once its save has returned, so the test knows the last acknowledged one.
"""

import sys

from fieldkit.register import Register

home, issue_id, field, count = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
with Register.open(home, author=f"editor of {field}") as register:
    for n in range(count):
        value = f"{field} {n}"
        register.edit_issue(issue_id, {field: value})
        print(value, flush=True)
