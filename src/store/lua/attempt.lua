-- Counts one failed attempt (a wrong email) on a link, unless it is locked already.
-- KEYS: 1 the link's failed-attempt counter
-- ARGV: 1 attempts at which the link locks, 2 seconds the counter lives (the link's remaining
--       life plus the leeway)
-- Returns {locked_before, attempts}: {1, n} when the link was locked already (nothing counted),
-- {0, n} with the count after this attempt otherwise. The count never passes ARGV[1].
local n = tonumber(redis.call('GET', KEYS[1]) or '0')
if n >= tonumber(ARGV[1]) then return {1, n} end
n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('EXPIRE', KEYS[1], ARGV[2]) end
return {0, n}
