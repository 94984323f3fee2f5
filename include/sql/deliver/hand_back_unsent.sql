-- Hand back, unsent, the rows a claim still holds once its task stopped sending to an endpoint that is gone or
-- whose circuit breaker opened: scheduled again (never failed: nothing was tried), so they wait for the endpoint
-- and go out with the first sweep that may send to it, or expire at the late window like any other row.
-- Run after every outcome of the claim is recorded, so the rows left holding the token were never posted. ids:
-- the rows the task meant to send, looked up by primary key.
UPDATE notifications
SET status = 'scheduled', claim_token = NULL, claimed_at = NULL, updated_at = now()
WHERE id = ANY (%(ids)s::bigint[]) AND claim_token = %(claim_token)s AND status = 'sending'
