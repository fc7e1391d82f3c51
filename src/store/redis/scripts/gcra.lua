-- KEYS: the account's bucket. ARGV: emission interval (ms), burst, most tokens wanted.
-- Takes as many tokens as the bucket holds, up to the number wanted (GCRA: one token per
-- interval, up to `burst` at once). Returns {taken, ms to wait for the next one when none}.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local want = tonumber(ARGV[3])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local available = math.floor((now + burst * interval - tat) / interval)
if available < 1 then return {0, tat + interval - burst * interval - now} end
local taken = math.min(available, want)
local new_tat = tat + taken * interval
redis.call('SET', KEYS[1], new_tat, 'PX', math.ceil(new_tat - now) + 1000)
return {taken, 0}
