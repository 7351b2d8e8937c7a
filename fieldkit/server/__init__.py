"""The central store: where laptops meet, sync, and leave an audit trail.

``fieldkit serve`` runs ``app.create_app`` under uvicorn. The pieces:

- ``db``: the data-access layer (``Database``), SQLite or PostgreSQL behind one
  set of methods, with migrations;
- ``rules``: what is checked before an operation is applied (pure);
- ``accounts``: users, tokens and scope;
- ``app``: the HTTP API (FastAPI).

Hooks for the read-only Open311 routes (``fieldkit/server/open311.py``): that
module defines a FastAPI ``APIRouter`` named ``router``; ``create_app``
includes it when the module exists. Its routes use two dependencies from
``fieldkit.server.app``:

- ``current_user`` gives the authenticated ``accounts.User`` (401 otherwise);
- ``get_db`` gives the ``db.Database``, whose ``records(user, type, after_id,
  limit)``, ``record(user, record_id)`` and ``children(user, issue_id)``
  return ``rules.Record`` rows (merge state in ``.state["values"]``) already
  limited to the user's scope.
"""
