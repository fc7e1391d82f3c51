-- KEYS: revoked hash, account's token revocations, all token revocations, events
-- ARGV: field, until, now, max live, event, max len, prefix
sweep(KEYS[1], KEYS[3], ARGV[7], ARGV[3], 1000)
local current = redis.call('ZSCORE', KEYS[2], ARGV[1])
if current and tonumber(current) <= tonumber(ARGV[3]) then current = nil end
local live = redis.call('ZCOUNT', KEYS[2], '(' .. ARGV[3], '+inf')
if (not current) and live >= tonumber(ARGV[4]) then return {'QUOTA'} end
local untl = tonumber(ARGV[2])
if current and tonumber(current) > untl then untl = tonumber(current) end
local score = string.format('%.0f', untl)
redis.call('ZADD', KEYS[2], score, ARGV[1])
redis.call('ZADD', KEYS[3], score, ARGV[1])
redis.call('HSET', KEYS[1], ARGV[1], score)
local id = redis.call('XADD', KEYS[4], 'MAXLEN', '~', ARGV[6], '*', 'e', ARGV[5])
audit()
return {'OK', id}
