"""The central store against its own /openapi.json, fuzzed by schemathesis: no input makes it answer 500,
and every answer matches the documented status codes and shapes. In process (ASGI), a few examples
per route, on SQLite and PostgreSQL."""

from __future__ import annotations


import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from fieldkit.server.accounts import check_account
from fieldkit.server.app import create_app
from fieldkit.server.db import Database
from sync_fixtures import BACKENDS, drop_pg_schema, issue_op, new_pg_schema

TOKENS: dict[str, str] = {}


@pytest.fixture(scope="module", params=BACKENDS)
def api(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    schema = None
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('schemathesis') / 'central.sqlite3'}"
    else:
        schema, url = new_pg_schema()
    database = Database(url)
    app = create_app(database)
    TOKENS["admin"] = database.add_user(check_account("admin", "admin", [], [])).token
    database.push(database.users()[0], [issue_op() for _ in range(3)])
    yield schemathesis.openapi.from_asgi("/openapi.json", app)
    database.close()
    if schema:
        drop_pg_schema(schema)


schema = schemathesis.pytest.from_fixture("api")


@schema.parametrize()
@settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_input_breaks_the_store(case) -> None:
    case.call_and_validate(
        headers={"Authorization": f"Bearer {TOKENS['admin']}"},
        checks=[not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance],
    )
