-- Demo users for `make run` (tools/demo.py); the application owns users, so this is never pipeline code.
INSERT INTO users (id, first_name, last_name, birthday, timezone)
VALUES (%(id)s, %(first_name)s, %(last_name)s, %(birthday)s, %(timezone)s)
ON CONFLICT (id) DO NOTHING
