-- Counts one login attempt on a counter whose window starts at its first attempt.
-- Returns {count, remaining window (ms)}.

local counter_key = KEYS[1]

local window_ms = ARGV[1]

local n = redis.call('INCR', counter_key)
local ttl = redis.call('PTTL', counter_key)
if ttl < 0 then
  redis.call('PEXPIRE', counter_key, window_ms)
  ttl = tonumber(window_ms)
end
return {n, ttl}
