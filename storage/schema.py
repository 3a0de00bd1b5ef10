"""The full table metadata: importing this module registers every table module."""

from __future__ import annotations

from sqlmodel import SQLModel

import storage.alerts
import storage.models
import storage.paper

# Every module that defines tables is imported above, so Alembic and the tests see the whole schema.
TABLE_MODULES = (storage.models, storage.paper, storage.alerts)
metadata = SQLModel.metadata
