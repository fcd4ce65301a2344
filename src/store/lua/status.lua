-- What is known of a link, read-only.
-- KEYS: as redeem.lua. ARGV: 1 iat, 2 max uses, 3 device id ('' for none)
-- Returns {revoked 0/1, uses, device known 0/1}.
local marks = redis.call('MGET', KEYS[2], KEYS[3], KEYS[4], KEYS[5])
local revoked = 0
if marks[1] then revoked = 1 end
local iat = tonumber(ARGV[1])
for i = 2, 4 do
  if marks[i] and iat <= tonumber(marks[i]) then revoked = 1 end
end
local max = tonumber(ARGV[2])
if max == -1 then
  return {revoked, tonumber(redis.call('GET', KEYS[1]) or '0'), 0}
elseif max == 1 then
  local holder = redis.call('GET', KEYS[1])
  if not holder then return {revoked, 0, 0} end
  if holder == ARGV[3] then return {revoked, 1, 1} end
  return {revoked, 1, 0}
end
local known = 0
if ARGV[3] ~= '' then known = redis.call('SISMEMBER', KEYS[1], ARGV[3]) end
return {revoked, redis.call('SCARD', KEYS[1]), known}
