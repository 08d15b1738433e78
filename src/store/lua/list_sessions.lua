-- A user's live sessions. Index entries whose session has expired are dropped on the way.
-- Returns a flat array: sid, created (ms), last refreshed (ms or ''), user agent, client address,
-- end (s or ''), for each live session.

local index_key = KEYS[1]

local session_prefix = ARGV[1]

local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', index_key, '-inf', string.format('%d', now))
local out = {}
for _, sid in ipairs(redis.call('ZRANGE', index_key, 0, -1)) do
  local f = redis.call('HMGET', session_prefix .. sid, 'created', 'last', 'ua', 'ip', 'end', 'rev')
  if f[1] and f[6] ~= '1' then
    for _, v in ipairs({sid, f[1], f[2] or '', f[3] or '', f[4] or '', f[5] or ''}) do
      out[#out + 1] = v
    end
  end
end
return out
