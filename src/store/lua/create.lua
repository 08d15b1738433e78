-- A login starts a session: its record in the user's sessions hash. Runs after records.lua.
-- Now and then (when the hash has doubled since it was last swept) records past their keep are
-- dropped first, so that a user who keeps logging in never piles up dead ones.

local sessions_key = KEYS[1]

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
local size = redis.call('HLEN', sessions_key)
if size >= SWEEP_FROM and size >= tonumber(redis.call('HGET', sessions_key, 'sweep_at') or '0') then
  local left = prune(sessions_key, now)
  redis.call('HSET', sessions_key, 'sweep_at', string.format('%d', math.max(SWEEP_FROM, 2 * left)))
end
local s = {flags = 0, keep = tonumber(keep_until_ms), created = now, last = 0, cur = jti,
  retired = {}, ua = user_agent, ip = client_address}
if session_end ~= '' then
  s.end_s = tonumber(session_end)
end
if browser_session == '1' then
  s.flags = BROWSER
end
redis.call('HSET', sessions_key, sid, encode(s))
if size == 0 then
  redis.call('PEXPIREAT', sessions_key, keep_until_ms)
else
  redis.call('PEXPIREAT', sessions_key, keep_until_ms, 'GT')
end
return 1
