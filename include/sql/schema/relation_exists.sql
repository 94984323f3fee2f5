-- Whether a relation of this name is visible on the search path.
SELECT to_regclass(%(relation)s) IS NOT NULL AS found
