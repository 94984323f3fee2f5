"""Birthday pipeline business logic: time rules, settings, planning and the database schema."""
