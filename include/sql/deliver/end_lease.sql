-- End a claim's lease once its task has recorded everything: rows it did not send are free to claim at once.
DELETE FROM claim_leases WHERE claim_token = %(claim_token)s
