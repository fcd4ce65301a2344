-- Stores a new one-time code for a link, atomically: refused on a locked or revoked link and
-- past the codes allowed per window; otherwise it replaces any previous code, with no tries used.
-- KEYS: 1 the link's uses (not read: the link's keys come first in every script), 2 link
--       revocation, 3 media scope, 4 inviter scope, 5 tenant scope, 6 failed attempts, 7 the
--       link's code (hash: h keyed digest, w wrong tries), 8 codes sent in the window
-- ARGV: 1 iat, 2 attempts that lock, 3 keyed digest of the code, 4 seconds the code lives,
--       5 codes allowed per window, 6 seconds of the window (both within the link's life)
-- Returns {code, seconds}: 0 stored, 1 too many codes ({1, seconds until one is allowed}),
-- 2 revoked, 3 locked.
local marks = redis.call('MGET', KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6])
if marks[5] and tonumber(marks[5]) >= tonumber(ARGV[2]) then return {3, 0} end
if marks[1] then return {2, 0} end
local iat = tonumber(ARGV[1])
for i = 2, 4 do
  if marks[i] and iat <= tonumber(marks[i]) then return {2, 0} end
end
local sent = tonumber(redis.call('GET', KEYS[8]) or '0')
if sent >= tonumber(ARGV[5]) then
  local ttl = redis.call('TTL', KEYS[8])
  if ttl < 1 then ttl = 1 end
  return {1, ttl}
end
if redis.call('INCR', KEYS[8]) == 1 then redis.call('EXPIRE', KEYS[8], ARGV[6]) end
redis.call('DEL', KEYS[7])
redis.call('HSET', KEYS[7], 'h', ARGV[3], 'w', 0)
redis.call('EXPIRE', KEYS[7], ARGV[4])
return {0, 0}
