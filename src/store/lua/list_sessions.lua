-- A user's live sessions; records past their keep are dropped on the way. Sessions the previous
-- layout still holds are listed from it (its index entries whose session expired are dropped).
-- Runs after records.lua.
-- Returns {records, legacy}: records a flat array of session id (packed) and record for each
-- live session; legacy a flat array of sid, created (ms), last refreshed (ms or ''), user agent,
-- client address, end (s or '') for each live session of the previous layout.

local sessions_key = KEYS[1]
local legacy_index_key = KEYS[2]

local legacy_session_prefix = ARGV[1]

local now = now_ms()
local records = {}
local live = rare().sweep(sessions_key, now)
for i = 1, #live, 2 do
  -- An ended session's record is its 8 bytes of flags and keep.
  if #live[i + 1] > 8 then
    records[#records + 1] = live[i]
    records[#records + 1] = live[i + 1]
  end
end

local legacy = {}
redis.call('ZREMRANGEBYSCORE', legacy_index_key, '-inf', string.format('%d', now))
for _, sid in ipairs(redis.call('ZRANGE', legacy_index_key, 0, -1)) do
  local f = redis.call('HMGET', legacy_session_prefix .. sid, 'created', 'last', 'ua', 'ip', 'end',
    'rev')
  if f[1] and f[6] ~= '1' then
    for _, v in ipairs({sid, f[1], f[2] or '', f[3] or '', f[4] or '', f[5] or ''}) do
      legacy[#legacy + 1] = v
    end
  end
end
return {records, legacy}
