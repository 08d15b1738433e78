-- Session records: the one Lua reading of the layout written down at the top of
-- src/store/redis.rs (the Rust side reads it in `SessionRecord::decode`). Prepended to every
-- script that touches sessions; it defines functions only and reads no KEYS or ARGV.
-- Every function defined here is made again at each call of a script, and a refresh is the
-- hot path: so few are defined up front, the rest on demand by `rare()`, and flags are tested
-- with `%` rather than through calls.
--
-- A record, integers big-endian, each jti as its length (one byte) and its packed bytes:
--   head, what a refresh rewrites:
--     B format (1)  B flags  I6 keep (ms: when the record may go)
--     a revoked record ends here (8 bytes); a live one goes on:
--     I6 last refreshed (ms, 0: never)  current jti  pending jti (empty: none)
--     I5 pending iat  I5 pending exp  B n  n retirements: I6 retired at (ms), jti
--   tail, written when the session starts and copied as it is:
--     I6 created (ms)  [I5 absolute end (s), when flags has END]
--     the client address (B length, text)  the user agent (to the end)
-- Flags: 1 revoked, 2 browser-session cookies, 8 END, 16 brought over from the previous layout.
-- Ids come packed from the caller (16 bytes for 32 lowercase hex characters, any other id's text
-- padded with NUL bytes to at least 17): a script compares and stores them, nothing more.

-- The head of a live record: flags, keep, last, current, pending ('' for none), pending iat,
-- pending exp, how many retirements and where they start, and where the tail starts.
local function read_head(raw)
  local _, flags, keep, last, cur, pend, pend_iat, pend_exp, n, pos =
    struct.unpack('>BBI6I6Bc0Bc0I5I5B', raw)
  local tail = pos
  for _ = 1, n do
    tail = tail + 7 + string.byte(raw, tail + 6)
  end
  return flags, keep, last, cur, pend, pend_iat, pend_exp, n, pos, tail
end

-- The retirements still within `interval` ms of `now`, as they are written (a string), and how
-- many; past its interval, a retired token is as unknown to its session as one never issued
-- (both are reuse), so its moment is forgotten.
local function recent_retirements(raw, n, pos, now, interval)
  if n == 0 then
    return '', 0
  end
  local kept, count = {}, 0
  for _ = 1, n do
    local size = 7 + string.byte(raw, pos + 6)
    if now < struct.unpack('>I6', raw, pos) + interval then
      kept[#kept + 1] = string.sub(raw, pos, pos + size - 1)
      count = count + 1
    end
    pos = pos + size
  end
  return table.concat(kept), count
end

-- When `jti` was retired (ms), if the record remembers it; nil otherwise.
local function retired_at(raw, n, pos, jti)
  for _ = 1, n do
    local len = string.byte(raw, pos + 6)
    if string.sub(raw, pos + 7, pos + 6 + len) == jti then
      return struct.unpack('>I6', raw, pos)
    end
    pos = pos + 7 + len
  end
  return nil
end

-- `retirements` as `recent_retirements` gives them (a string, and how many).
local function write_head(flags, keep, last, cur, pend, pend_iat, pend_exp, retirements, n)
  return struct.pack('>BBI6I6Bc0Bc0I5I5B', 1, flags, keep, last, #cur, cur, #pend, pend,
    pend_iat, pend_exp, n) .. retirements
end

-- A revoked record: what is left of an ended session, kept as long as the record was.
local function revoked(flags, keep)
  return struct.pack('>BBI6', 1, flags % 4 - flags % 2 + (flags % 32 >= 16 and 16 or 0) + 1, keep)
end

local function now_ms()
  local t = redis.call('TIME')
  return t[1] * 1000 + math.floor(t[2] / 1000)
end

-- What only some calls need: whole records, the previous layout, sweeps, first expiries.
local function rare()
  local M = {}

  -- Six bytes of milliseconds reach the year 10889; tokens past 9999 are refused before this.
  M.MAX_MS = 281474976710655

  function M.tail(created, end_s, ip, ua)
    local ends = ''
    if end_s then
      ends = struct.pack('>I5', end_s)
    end
    return struct.pack('>I6', created) .. ends .. struct.pack('>Bc0', #ip, ip) .. ua
  end

  -- A new live record.
  function M.record(flags, keep, cur, end_s, created, ip, ua)
    if end_s then
      flags = flags + 8
    end
    return write_head(flags, keep, 0, cur, '', 0, 0, '', 0) .. M.tail(created, end_s, ip, ua)
  end

  -- Record fields are packed session ids (16 bytes or more); shorter ones are bookkeeping.
  function M.is_record_field(field)
    return #field >= 16
  end

  -- Keeps the user's sessions hash until `keep` (ms) at least. GT (Redis 7) moves an expiry
  -- only forward; a hash that was just made has none yet, and GT never sets a first one.
  function M.keep_hash_until(sessions_key, keep)
    local at = string.format('%d', keep)
    if redis.call('PEXPIREAT', sessions_key, at, 'GT') == 0
        and redis.call('PTTL', sessions_key) == -1 then
      redis.call('PEXPIREAT', sessions_key, at)
    end
  end

  -- A jti or session id of the previous layout (text), packed as the Rust side packs it.
  function M.pack_id(text)
    if #text == 32 and not string.find(text, '[^0-9a-f]') then
      return (string.gsub(text, '..', function(h)
        return string.char(tonumber(h, 16))
      end))
    end
    if #text < 17 then
      return text .. string.rep('\0', 17 - #text)
    end
    return text
  end

  -- A session written by the previous layout (a hash of its own, blacklist entries as keys of
  -- their own) moves into the user's sessions hash at its first use; its blacklist entries
  -- stay where they are, expire by themselves, and are still read for it (flag 16). Returns the
  -- record, or nil when there is none.
  function M.bring_over(sessions_key, sid, legacy_session_key, now)
    local s = redis.call('HMGET', legacy_session_key, 'cur', 'rev', 'end', 'created', 'last',
      'pend', 'pi', 'pe', 'br', 'ua', 'ip')
    if not s[1] then
      return nil
    end
    local keep = redis.call('PEXPIRETIME', legacy_session_key)
    if keep <= 0 then
      -- Every record of that layout had an expiry; should one not, it goes with its pending
      -- token.
      keep = math.max((tonumber(s[8]) or 0) * 1000, now + 1)
    end
    keep = math.min(keep, M.MAX_MS)
    local flags = 16
    if s[9] == '1' then
      flags = flags + 2
    end
    local raw
    if s[2] == '1' then
      raw = revoked(flags, keep)
    else
      local end_s = nil
      if s[3] and s[3] ~= '' then
        end_s = tonumber(s[3])
        flags = flags + 8
      end
      local pend, pend_iat, pend_exp = '', 0, 0
      if s[6] then
        pend, pend_iat, pend_exp = M.pack_id(s[6]), tonumber(s[7]), tonumber(s[8])
      end
      raw = write_head(flags, keep, tonumber(s[5] or '0'), M.pack_id(s[1]), pend, pend_iat,
        pend_exp, '', 0) .. M.tail(tonumber(s[4] or '0'), end_s, s[11] or '', s[10] or '')
    end
    redis.call('HSET', sessions_key, sid, raw)
    M.keep_hash_until(sessions_key, keep)
    redis.call('DEL', legacy_session_key)
    return raw
  end

  -- Every record of a user that has not outlived its keep, after dropping those that have.
  -- Returns a flat list: field, record, field, record...
  function M.sweep(sessions_key, now)
    local all = redis.call('HGETALL', sessions_key)
    local live, dead = {}, {}
    for i = 1, #all, 2 do
      if M.is_record_field(all[i]) then
        local _, _, keep = struct.unpack('>BBI6', all[i + 1])
        if keep <= now then
          dead[#dead + 1] = all[i]
        else
          live[#live + 1] = all[i]
          live[#live + 1] = all[i + 1]
        end
      end
    end
    -- In slices: Lua's unpack has a limit on how many values it spreads.
    for i = 1, #dead, 2000 do
      redis.call('HDEL', sessions_key, unpack(dead, i, math.min(i + 1999, #dead)))
    end
    return live
  end

  -- Ends every session of a user: those in the sessions hash, and any the previous layout
  -- still holds (its index and records). Returns how many live sessions were ended.
  function M.end_all(sessions_key, legacy_index_key, legacy_session_prefix, now)
    local live = M.sweep(sessions_key, now)
    local writes = {}
    for i = 1, #live, 2 do
      local _, flags, keep = struct.unpack('>BBI6', live[i + 1])
      if flags % 2 == 0 then
        writes[#writes + 1] = live[i]
        writes[#writes + 1] = revoked(flags, keep)
      end
    end
    for i = 1, #writes, 2000 do
      redis.call('HSET', sessions_key, unpack(writes, i, math.min(i + 1999, #writes)))
    end
    local ended = #writes / 2
    for _, sid in ipairs(redis.call('ZRANGE', legacy_index_key, 0, -1)) do
      local key = legacy_session_prefix .. sid
      if redis.call('EXISTS', key) == 1 and redis.call('HGET', key, 'rev') ~= '1' then
        redis.call('HSET', key, 'rev', '1')
        redis.call('HDEL', key, 'pend', 'pi', 'pe')
        ended = ended + 1
      end
    end
    redis.call('DEL', legacy_index_key)
    return ended
  end

  return M
end
