-- Sets a revocation marker to at least ARGV[1], kept at least ARGV[2] seconds from now (a TTL on
-- Redis's own clock). A repeated or concurrent revocation never moves the moment back nor
-- shortens the marker.
-- KEYS: 1 marker. Returns the marker's value.
local value = tonumber(ARGV[1])
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
if current > value then value = current end
local keep = tonumber(ARGV[2])
local ttl = redis.call('TTL', KEYS[1])
if ttl > keep then keep = ttl end
redis.call('SET', KEYS[1], value, 'EX', keep)
return value
