"""PostgreSQL access: pools through PgBouncer, and the migration runner."""
