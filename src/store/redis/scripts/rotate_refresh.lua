-- KEYS: old key hash, new key hash, account keys, revoked, events, old role keys, new role keys,
--       lapses, expiring
-- ARGV: refresh hash, now, new id, new record, new refresh hash, revoked field, event, max len,
--       old id, new expiry score, new role id or '', new key's index member, its lapse score
--       or '', its warning score or '', old key's index member
if redis.call('HEXISTS', KEYS[1], 'rec') == 0 then return 'NOTFOUND' end
if redis.call('EXISTS', KEYS[2]) == 1 then return 'EXISTS' end
if redis.call('HEXISTS', KEYS[1], 'revoked_at') == 1 then return 'USED' end
-- A rotated key's successor is made by the rotation; refreshing it would fork a second one.
if redis.call('HEXISTS', KEYS[1], 'rotated_to') == 1 then return 'ROTATED' end
if redis.call('HGET', KEYS[1], 'refresh') ~= ARGV[1] then return 'MISMATCH' end
redis.call('HSET', KEYS[1], 'revoked_at', ARGV[2])
redis.call('ZREM', KEYS[6], ARGV[9])
redis.call('HSET', KEYS[2], 'rec', ARGV[4], 'refresh', ARGV[5])
redis.call('ZADD', KEYS[3], 0, ARGV[3])
if ARGV[11] ~= '' then redis.call('ZADD', KEYS[7], ARGV[10], ARGV[3]) end
redis.call('ZREM', KEYS[8], ARGV[15])
redis.call('ZREM', KEYS[9], ARGV[15])
if ARGV[13] ~= '' then redis.call('ZADD', KEYS[8], ARGV[13], ARGV[12]) end
if ARGV[14] ~= '' then redis.call('ZADD', KEYS[9], ARGV[14], ARGV[12]) end
redis.call('HSET', KEYS[4], ARGV[6], ARGV[2])
redis.call('XADD', KEYS[5], 'MAXLEN', '~', ARGV[8], '*', 'e', ARGV[7])
audit()
return 'OK'
