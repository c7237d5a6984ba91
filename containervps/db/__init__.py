"""SQLite persistence (SQLModel); the schema is owned by Alembic migrations."""
