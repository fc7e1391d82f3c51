-- KEYS: account roles, role names, all roles, role keys, events
-- ARGV: role id, expected record, name, now, all-roles field, event, max len
local old = redis.call('HGET', KEYS[1], ARGV[1])
if not old then return {'NOTFOUND'} end
if old ~= ARGV[2] then return {'CONFLICT'} end
local live = redis.call('ZCOUNT', KEYS[4], '(' .. ARGV[4], '+inf')
if live > 0 then return {'INUSE', live} end
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[2], ARGV[3])
redis.call('HDEL', KEYS[3], ARGV[5])
redis.call('DEL', KEYS[4])
redis.call('XADD', KEYS[5], 'MAXLEN', '~', ARGV[7], '*', 'e', ARGV[6])
audit()
return {'OK'}
