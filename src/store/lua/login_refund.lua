-- Takes back one counted login attempt (it succeeded). Never below zero, never extends the window.
-- KEYS[1] counter
local n = tonumber(redis.call('GET', KEYS[1]) or '0')
if n > 0 then
  return redis.call('DECR', KEYS[1])
end
return 0
