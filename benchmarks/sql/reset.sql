-- Empty the application tables between measurements (benchmark databases only).
TRUNCATE users, notifications, send_pacing RESTART IDENTITY CASCADE
