-- One redemption of an N-use link (N > 1), atomically: the lock and revocations first, then the
-- device set. (Single-use and unlimited links need no conditional write and are redeemed with
-- plain commands in one MULTI/EXEC; see redis.rs.)
-- KEYS: 1 uses (a set of device digests), 2 link revocation, 3 media scope, 4 inviter scope,
--       5 tenant scope, 6 failed attempts
-- ARGV: 1 iat, 2 max uses, 3 device digest, 4 seconds the set lives, 5 attempts that lock
-- Returns {code, uses}: code 1 admitted, 2 re-entry, 3 exhausted, 0 revoked, 4 locked.
local marks = redis.call('MGET', KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6])
if marks[5] and tonumber(marks[5]) >= tonumber(ARGV[5]) then return {4, 0} end
if marks[1] then return {0, 0} end
local iat = tonumber(ARGV[1])
for i = 2, 4 do
  if marks[i] and iat <= tonumber(marks[i]) then return {0, 0} end
end
if redis.call('SISMEMBER', KEYS[1], ARGV[3]) == 1 then
  return {2, redis.call('SCARD', KEYS[1])}
end
local n = redis.call('SCARD', KEYS[1])
if n >= tonumber(ARGV[2]) then return {3, n} end
redis.call('SADD', KEYS[1], ARGV[3])
if n == 0 then redis.call('EXPIRE', KEYS[1], ARGV[4]) end
return {1, n + 1}
