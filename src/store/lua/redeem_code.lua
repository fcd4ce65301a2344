-- A redemption that involves a one-time code, atomically, for any kind of link: the code given
-- is checked (a wrong one counts a try; the last try voids it) or, without one, a device new to
-- the link is refused (RequireEmailCode); then the lock and revocations, then the use. A valid
-- code on a link whose uses are all taken moves the link: this device takes one earlier device's
-- place, so the count never grows past the limit. The code is used up only by a redemption that
-- admits its device.
-- KEYS: 1 uses (a set of device digests; one digest for a single-use link; a count for an
--       unlimited one), 2 link revocation, 3 media scope, 4 inviter scope, 5 tenant scope,
--       6 failed attempts, 7 the link's code (hash: h keyed digest, w wrong tries)
-- ARGV: 1 iat, 2 max uses (-1 unlimited), 3 device digest, 4 seconds the uses live, 5 attempts
--       that lock, 6 keyed digest of the code given ('' when none), 7 tries a code allows
-- Returns {code, uses, tries left}: 1 admitted, 2 re-entry, 8 admitted by a move, 0 revoked,
-- 4 locked, 5 code required, 6 wrong code, 7 no live code.
local marks = redis.call('MGET', KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6])
if marks[5] and tonumber(marks[5]) >= tonumber(ARGV[5]) then return {4, 0, 0} end
local max, device, given = tonumber(ARGV[2]), ARGV[3], ARGV[6]
local known, n = false, 0
if max == 1 then
  local holder = redis.call('GET', KEYS[1])
  if holder then n = 1; known = holder == device end
elseif max > 1 then
  n = redis.call('SCARD', KEYS[1])
  known = n > 0 and redis.call('SISMEMBER', KEYS[1], device) == 1
else
  n = tonumber(redis.call('GET', KEYS[1]) or '0')
end
if given == '' then
  if not known then return {5, n, 0} end
else
  local stored = redis.call('HGET', KEYS[7], 'h')
  if not stored then return {7, n, 0} end
  -- Compared in constant time: every byte, whatever the first difference.
  local diff = 0
  if #stored ~= #given then diff = 1 end
  for i = 1, math.min(#stored, #given) do
    diff = bit.bor(diff, bit.bxor(string.byte(stored, i), string.byte(given, i)))
  end
  if diff ~= 0 then
    local left = tonumber(ARGV[7]) - redis.call('HINCRBY', KEYS[7], 'w', 1)
    if left <= 0 then
      redis.call('DEL', KEYS[7])
      left = 0
    end
    return {6, n, left}
  end
end
if marks[1] then return {0, n, 0} end
local iat = tonumber(ARGV[1])
for i = 2, 4 do
  if marks[i] and iat <= tonumber(marks[i]) then return {0, n, 0} end
end
if given ~= '' then redis.call('DEL', KEYS[7]) end
if known then return {2, n, 0} end
if max == -1 then
  n = redis.call('INCR', KEYS[1])
  if n == 1 then redis.call('EXPIRE', KEYS[1], ARGV[4]) end
  return {1, n, 0}
end
if n < max then
  if max == 1 then
    redis.call('SET', KEYS[1], device, 'EX', ARGV[4])
  else
    redis.call('SADD', KEYS[1], device)
    if n == 0 then redis.call('EXPIRE', KEYS[1], ARGV[4]) end
  end
  return {1, n + 1, 0}
end
-- Every use is taken by other devices, and the code proved the inbox: move.
if max == 1 then
  redis.call('SET', KEYS[1], device, 'KEEPTTL')
else
  redis.call('SPOP', KEYS[1])
  redis.call('SADD', KEYS[1], device)
end
return {8, n, 0}
