"""Database access: the pool, migrations, and every runtime statement (queries.sql)."""
