-- Takes back the claim of a single-use link that a redemption made in the same step in which
-- it found the link revoked: deletes KEYS[1] only while it still holds this device (ARGV[1]).
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
