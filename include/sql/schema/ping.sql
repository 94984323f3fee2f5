-- Whether a pooled connection still reaches its server (one that was ended while idle fails here).
SELECT 1
