-- KEYS: key hash
-- ARGV: new refresh hash
-- Only an unrevoked (so never refreshed) SDK-made key gets a new refresh hash.
if redis.call('HEXISTS', KEYS[1], 'rec') == 0 then return 'NOTFOUND' end
if redis.call('HEXISTS', KEYS[1], 'revoked_at') == 1 then return 'USED' end
if redis.call('HEXISTS', KEYS[1], 'refresh') == 0 then return 'NOREFRESH' end
redis.call('HSET', KEYS[1], 'refresh', ARGV[1])
return 'OK'
