-- One redemption, atomically: revocations first, then the device record.
-- KEYS: 1 uses, 2 link revocation, 3 media scope, 4 inviter scope, 5 tenant scope
-- ARGV: 1 iat, 2 max uses (-1 unlimited), 3 device digest, 4 keep-until (unix seconds)
-- Returns {code, uses}: code 1 admitted, 2 re-entry, 3 exhausted, 0 revoked.
-- One MGET reads the markers and, for a single-use link, its holder (MGET answers nil for a
-- set, so the same call serves every kind of link).
local got = redis.call('MGET', KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[1])
if got[1] then return {0, 0} end
local iat = tonumber(ARGV[1])
for i = 2, 4 do
  if got[i] and iat <= tonumber(got[i]) then return {0, 0} end
end
local max = tonumber(ARGV[2])
if max == -1 then
  -- Unlimited: a counter only, no device list.
  local n = redis.call('INCR', KEYS[1])
  if n == 1 then redis.call('EXPIREAT', KEYS[1], ARGV[4]) end
  return {1, n}
elseif max == 1 then
  -- Single use: a plain value holding the one device's digest (an integer to Redis).
  local holder = got[5]
  if not holder then
    redis.call('SET', KEYS[1], ARGV[3], 'EXAT', ARGV[4])
    return {1, 1}
  elseif holder == ARGV[3] then
    return {2, 1}
  end
  return {3, 1}
end
-- N uses: a set of device digests, bounded by N.
if redis.call('SISMEMBER', KEYS[1], ARGV[3]) == 1 then
  return {2, redis.call('SCARD', KEYS[1])}
end
local n = redis.call('SCARD', KEYS[1])
if n >= max then return {3, n} end
redis.call('SADD', KEYS[1], ARGV[3])
if n == 0 then redis.call('EXPIREAT', KEYS[1], ARGV[4]) end
return {1, n + 1}
