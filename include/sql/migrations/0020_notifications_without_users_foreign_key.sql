-- notifications.user_id no longer references users: the users relation may be a team's own table or view
-- (birthday_users_relation), which the pipeline must never constrain, lock or cascade into. A deleted
-- user's notifications now stay: the send re-check and the sweep cancel the unsent ones ("user no longer
-- exists"), and sent ones remain as history (docs/deploy.md). Databases created since 0002 lost the key
-- have none; for them this changes nothing.
ALTER TABLE notifications DROP CONSTRAINT IF EXISTS notifications_user_id_fkey;
