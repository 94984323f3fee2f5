-- Forget every planned row, keeping the users, so the next planning writes them all again.
TRUNCATE notifications RESTART IDENTITY CASCADE
