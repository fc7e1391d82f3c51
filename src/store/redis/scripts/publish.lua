-- KEYS: a hash (revoked, or policies), events
-- ARGV: field, value, event, max len
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
local id = redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[4], '*', 'e', ARGV[3])
audit()
return id
