"""The database: opening connections and reading rows by name, the SQL loader, and the connection pool of the page."""
