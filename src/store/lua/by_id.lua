-- What the store knows of a link by its id alone, without its token (so without its use limit,
-- issue time or scopes). Read-only.
-- KEYS: 1 the link's uses, 2 its revocation marker, 3 its failed-attempt counter
-- ARGV: 1 the smallest value that is a single-use link's device digest rather than an
--       unlimited link's count (the digests are 63 bits of a hash; a count never gets near)
-- Returns {uses, revoked (0/1), failed attempts}.
local uses = 0
local kind = redis.call('TYPE', KEYS[1]).ok
if kind == 'set' then
  uses = redis.call('SCARD', KEYS[1])
elseif kind == 'string' then
  local value = tonumber(redis.call('GET', KEYS[1])) or 0
  if value >= tonumber(ARGV[1]) then uses = 1 else uses = value end
end
local revoked = redis.call('EXISTS', KEYS[2])
local attempts = tonumber(redis.call('GET', KEYS[3]) or '0')
return {uses, revoked, attempts}
