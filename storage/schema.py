"""The full table metadata: importing this module registers every table module."""

from __future__ import annotations

from sqlmodel import SQLModel

import storage.models  # noqa: F401  (registers the application tables)

metadata = SQLModel.metadata
