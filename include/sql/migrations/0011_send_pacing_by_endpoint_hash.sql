-- send_pacing keyed an endpoint by its URL, which may carry credentials (user-info, a token in the query).
-- The key is now the SHA-256 of the endpoint, in hex; the table holds only the next free send slot of each
-- endpoint, state that is worthless a second later, so the old rows (and the URLs in them) are dropped.
DELETE FROM send_pacing;
ALTER TABLE send_pacing RENAME COLUMN endpoint TO endpoint_sha256;
