-- A login starts a session: its record in the user's sessions hash. Runs after records.lua.
-- Now and then (when the hash has doubled since it was last swept) records past their keep are
-- dropped first, so that a user who keeps logging in never piles up dead ones.

local sessions_key = KEYS[1]
local user_key = KEYS[2]

local sid = ARGV[1]
local jti = ARGV[2]
local session_end = ARGV[3]
local browser_session = ARGV[4]
local user_agent = ARGV[5]
local client_address = ARGV[6]
local keep_until_ms = ARGV[7]

-- Sweeps are not worth it below this many fields.
local SWEEP_FROM = 32

local now = now_ms()
local m = rare()
local size = redis.call('HLEN', sessions_key)
if size >= SWEEP_FROM and size >= tonumber(redis.call('HGET', sessions_key, 'sweep_at') or '0') then
  local left = #m.sweep(sessions_key, now) / 2
  redis.call('HSET', sessions_key, 'sweep_at', string.format('%d', math.max(SWEEP_FROM, 2 * left)))
end
local flags, end_s = 0, nil
if browser_session == '1' then
  flags = 2
end
if session_end ~= '' then
  end_s = tonumber(session_end)
end
local record = m.record(flags, tonumber(keep_until_ms), jti, end_s, now, client_address, user_agent)
if redis.call('HGET', user_key, 'active') ~= '1' then
  -- The user was deactivated or deleted since the login checked it: the session is born ended
  -- (refresh.lua relies on a live session's user being active).
  record = revoked(flags, tonumber(keep_until_ms))
end
redis.call('HSET', sessions_key, sid, record)
if size == 0 then
  redis.call('PEXPIREAT', sessions_key, keep_until_ms)
else
  redis.call('PEXPIREAT', sessions_key, keep_until_ms, 'GT')
end
return 1
