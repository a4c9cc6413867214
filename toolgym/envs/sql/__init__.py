"""``ToolGym/SQL-v0``: questions over generated SQLite databases, answered through read-only SQL tools."""
