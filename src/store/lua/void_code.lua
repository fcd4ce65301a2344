-- Voids a link's one-time code if it is still the one given (its email could not be sent).
-- KEYS: 1 the link's code; ARGV: 1 keyed digest of the code
-- Returns 1 when voided, 0 when another code (or none) is there.
if redis.call('HGET', KEYS[1], 'h') == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
