-- KEYS: beats, nodes. ARGV: node id, cell, position, max staleness ms, deny when stale (0/1)
local t = redis.call('TIME')
local ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('XADD', KEYS[1], 'MAXLEN', '1', '*', 'n', ARGV[1])
local status = '{"node_id":' .. cjson.encode(ARGV[1]) .. ',"cell":' .. cjson.encode(ARGV[2])
  .. ',"position":' .. cjson.encode(ARGV[3]) .. ',"seen_at_ms":' .. string.format('%.0f', ms)
  .. ',"max_staleness_ms":' .. string.format('%.0f', tonumber(ARGV[4]))
  .. ',"deny_when_stale":' .. (ARGV[5] == '1' and 'true' or 'false') .. '}'
redis.call('HSET', KEYS[2], ARGV[1], status)
return {t[1], t[2]}
