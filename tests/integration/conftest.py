from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from django.db import connection

from djqueue.db import listener


@pytest.fixture
def other_connection(transactional_db: None) -> Iterator[psycopg.Connection[Any]]:
    """A second, independent connection to the test database (another worker, say)."""
    conn = listener.connect(autocommit=False)
    assert conn.info.dbname == connection.settings_dict["NAME"]
    yield conn
    conn.rollback()
    conn.close()
