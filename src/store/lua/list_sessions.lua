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
local records, dead = {}, {}
local all = redis.call('HGETALL', sessions_key)
for i = 1, #all, 2 do
  if is_record_field(all[i]) then
    local _, flags, keep = struct.unpack('>BBI6', all[i + 1])
    if keep <= now then
      dead[#dead + 1] = all[i]
    elseif not has(flags, REVOKED) then
      records[#records + 1] = all[i]
      records[#records + 1] = all[i + 1]
    end
  end
end
for i = 1, #dead, 2000 do
  redis.call('HDEL', sessions_key, unpack(dead, i, math.min(i + 1999, #dead)))
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
