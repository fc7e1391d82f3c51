-- KEYS: watermarks, events
-- ARGV: account, before ms or '' (now), max len, cut placeholder
local current = tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '0')
local cut
if ARGV[2] == '' then
  local t = redis.call('TIME')
  cut = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) + 1
  if cut <= current then cut = current + 1 end
else
  cut = tonumber(ARGV[2])
  if cut < current then cut = current end
end
local text = string.format('%.0f', cut)
redis.call('HSET', KEYS[1], ARGV[1], text)
local event = '{"IssuedBefore":{"account":' .. cjson.encode(ARGV[1]) .. ',"before_ms":' .. text .. '}}'
local id = redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[3], '*', 'e', event)
local record = ARGV[#ARGV - 1]
if record ~= '' then
  local placeholder = string.gsub(ARGV[4], '%p', '%%%0')
  ARGV[#ARGV - 1] = string.gsub(record, placeholder, text)
end
audit()
return {text, id}
