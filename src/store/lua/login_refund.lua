-- Takes back one counted login attempt (it succeeded). Never below zero, never extends the window.

local counter_key = KEYS[1]

local n = tonumber(redis.call('GET', counter_key) or '0')
if n > 0 then
  return redis.call('DECR', counter_key)
end
return 0
