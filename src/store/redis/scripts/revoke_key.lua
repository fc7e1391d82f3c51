-- KEYS: key hash, role keys, revoked, events, lapses, expiring
-- ARGV: now, revoked field, event, max len, key id, index member
if redis.call('HEXISTS', KEYS[1], 'rec') == 0 then return {'NOTFOUND'} end
redis.call('HSETNX', KEYS[1], 'revoked_at', ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[5])
redis.call('ZREM', KEYS[5], ARGV[6])
redis.call('ZREM', KEYS[6], ARGV[6])
redis.call('HSET', KEYS[3], ARGV[2], ARGV[1])
local id = redis.call('XADD', KEYS[4], 'MAXLEN', '~', ARGV[4], '*', 'e', ARGV[3])
audit()
return {'OK', id, redis.call('HGET', KEYS[1], 'revoked_at')}
