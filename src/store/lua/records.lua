-- Session records: the one Lua reading of the layout written down at the top of
-- src/store/redis.rs (the Rust side reads it in `SessionRecord::decode`). Prepended to every
-- script that touches sessions; it defines functions only and reads no KEYS or ARGV.
--
-- A record, all integers big-endian:
--   B format (1)  B flags  I6 keep (ms: when the record may go)
--   revoked records end here; a live one goes on:
--   I6 created (ms)  I6 last refreshed (ms, 0: never)  current jti
--   [pending jti, I5 its iat, I5 its exp]            when flags has PENDING
--   [I5 absolute end (s)]                            when flags has END
--   B n, then n retirements: jti, I6 retired at (ms), the newest last
--   B length of the client address, the address, and the user agent to the end.
-- A jti (or session id) is packed by the caller: 0x90 then 16 bytes for 32 lowercase hex
-- characters, else its length (1..64) then its text. The first byte says how long it is.

local REVOKED, BROWSER, PENDING, HAS_END, LEGACY = 1, 2, 4, 8, 16
-- Six bytes of milliseconds reach the year 10889; tokens past 9999 are refused before this.
local MAX_MS = 281474976710655

local function has(flags, flag)
  return bit.band(flags, flag) ~= 0
end

local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- When the entries of a token expiring at `exp` (s) may go, in ms.
local function keep_ms(exp, leeway)
  return math.min((tonumber(exp) + tonumber(leeway)) * 1000, MAX_MS)
end

-- Record fields start with a packed id's first byte; anything else (a letter) is bookkeeping.
local function is_record_field(field)
  local b = string.byte(field, 1)
  return b ~= nil and (b <= 64 or b == 144)
end

local function read_id(raw, pos)
  local n = string.byte(raw, pos) % 128
  return string.sub(raw, pos, pos + n), pos + n + 1
end

-- The record, or nil when there is none (or it has outlived its keep: it is gone, whatever
-- Redis has not swept yet).
local function decode(raw, now)
  if not raw then
    return nil
  end
  local _, flags, keep, pos = struct.unpack('>BBI6', raw)
  if keep <= now then
    return nil
  end
  local r = {flags = flags, keep = keep, retired = {}}
  if has(flags, REVOKED) then
    return r
  end
  r.created, r.last, pos = struct.unpack('>I6I6', raw, pos)
  r.cur, pos = read_id(raw, pos)
  if has(flags, PENDING) then
    r.pend, pos = read_id(raw, pos)
    r.pend_iat, r.pend_exp, pos = struct.unpack('>I5I5', raw, pos)
  end
  if has(flags, HAS_END) then
    r.end_s, pos = struct.unpack('>I5', raw, pos)
  end
  local n
  n, pos = struct.unpack('>B', raw, pos)
  for i = 1, n do
    local jti, at
    jti, pos = read_id(raw, pos)
    at, pos = struct.unpack('>I6', raw, pos)
    r.retired[i] = {jti, at}
  end
  local ip_len
  ip_len, pos = struct.unpack('>B', raw, pos)
  r.ip = string.sub(raw, pos, pos + ip_len - 1)
  r.ua = string.sub(raw, pos + ip_len)
  return r
end

local function encode(r)
  local flags = bit.band(r.flags, REVOKED + BROWSER + LEGACY)
  if has(flags, REVOKED) then
    return struct.pack('>BBI6', 1, flags, r.keep)
  end
  if r.pend then
    flags = flags + PENDING
  end
  if r.end_s then
    flags = flags + HAS_END
  end
  local parts = {struct.pack('>BBI6I6I6', 1, flags, r.keep, r.created, r.last), r.cur}
  if r.pend then
    parts[#parts + 1] = r.pend
    parts[#parts + 1] = struct.pack('>I5I5', r.pend_iat, r.pend_exp)
  end
  if r.end_s then
    parts[#parts + 1] = struct.pack('>I5', r.end_s)
  end
  local first = math.max(1, #r.retired - 254)
  parts[#parts + 1] = struct.pack('>B', #r.retired - first + 1)
  for i = first, #r.retired do
    parts[#parts + 1] = r.retired[i][1]
    parts[#parts + 1] = struct.pack('>I6', r.retired[i][2])
  end
  parts[#parts + 1] = struct.pack('>B', #r.ip)
  parts[#parts + 1] = r.ip
  parts[#parts + 1] = r.ua
  return table.concat(parts)
end

-- Ends a session: what is left is the mark, kept as long as the record was.
local function revoke_record(r)
  r.flags = bit.bor(r.flags, REVOKED)
end

-- Keeps the user's sessions hash until `keep` (ms) at least. GT (Redis 7) moves an expiry only
-- forward; a hash that was just made has none yet, and GT never sets a first one.
local function keep_hash_until(sessions_key, keep)
  local at = string.format('%d', keep)
  if redis.call('PEXPIREAT', sessions_key, at, 'GT') == 0
      and redis.call('PTTL', sessions_key) == -1 then
    redis.call('PEXPIREAT', sessions_key, at)
  end
end

-- When `jti` was retired (ms), as far as the record remembers (a retirement is remembered while
-- its reuse interval runs); false otherwise. A record brought over from the previous layout may
-- have its retirements in that layout's blacklist keys.
local function retired_at(r, jti, legacy_bl_key)
  for _, e in ipairs(r.retired) do
    if e[1] == jti then
      return e[2]
    end
  end
  if has(r.flags, LEGACY) then
    local at = redis.call('GET', legacy_bl_key)
    if at then
      return tonumber(at)
    end
  end
  return false
end

-- Forgets retirements whose reuse interval is over: past it, a retired token is as unknown to
-- its session as one never issued (both are reuse).
local function forget_old_retirements(r, now, interval)
  local kept = {}
  for _, e in ipairs(r.retired) do
    if now < e[2] + interval then
      kept[#kept + 1] = e
    end
  end
  r.retired = kept
end

-- A jti or session id of the previous layout (text), packed as the Rust side packs it.
local function pack_id(text)
  if #text == 32 and not string.find(text, '[^0-9a-f]') then
    return string.char(144) .. (string.gsub(text, '..', function(h)
      return string.char(tonumber(h, 16))
    end))
  end
  return string.char(#text) .. text
end

-- A session written by the previous layout (a hash of its own, blacklist entries as keys of
-- their own) moves into the user's sessions hash at its first use; its blacklist entries stay
-- where they are and expire by themselves. Returns the record, or nil when there is none.
local function bring_over(sessions_key, sid, legacy_session_key, now)
  local s = redis.call('HMGET', legacy_session_key, 'cur', 'rev', 'end', 'created', 'last',
    'pend', 'pi', 'pe', 'br', 'ua', 'ip')
  if not s[1] then
    return nil
  end
  local keep = redis.call('PEXPIRETIME', legacy_session_key)
  if keep <= 0 then
    -- Every record of that layout had an expiry; should one not, it goes with its pending token.
    keep = math.max((tonumber(s[8]) or 0) * 1000, now + 1)
  end
  local r = {flags = LEGACY, keep = keep, retired = {}}
  if s[2] == '1' then
    r.flags = r.flags + REVOKED
  else
    r.created = tonumber(s[4] or '0')
    r.last = tonumber(s[5] or '0')
    r.cur = pack_id(s[1])
    if s[6] then
      r.pend, r.pend_iat, r.pend_exp = pack_id(s[6]), tonumber(s[7]), tonumber(s[8])
    end
    if s[3] and s[3] ~= '' then
      r.end_s = tonumber(s[3])
    end
    if s[9] == '1' then
      r.flags = r.flags + BROWSER
    end
    r.ua, r.ip = s[10] or '', s[11] or ''
  end
  redis.call('HSET', sessions_key, sid, encode(r))
  keep_hash_until(sessions_key, keep)
  redis.call('DEL', legacy_session_key)
  return r
end

-- Ends every session of a user: those in the sessions hash, and any the previous layout still
-- holds (its index and records). Records past their keep are dropped on the way. Returns how
-- many live sessions were ended.
local function end_all(sessions_key, legacy_index_key, legacy_session_prefix, now)
  local ended = 0
  local all = redis.call('HGETALL', sessions_key)
  local writes, dead = {}, {}
  for i = 1, #all, 2 do
    if is_record_field(all[i]) then
      local _, flags, keep = struct.unpack('>BBI6', all[i + 1])
      if keep <= now then
        dead[#dead + 1] = all[i]
      elseif not has(flags, REVOKED) then
        writes[#writes + 1] = all[i]
        writes[#writes + 1] = struct.pack('>BBI6', 1, bit.band(flags, BROWSER + LEGACY) + REVOKED,
          keep)
        ended = ended + 1
      end
    end
  end
  -- In slices: Lua's unpack has a limit on how many values it spreads.
  for i = 1, #writes, 2000 do
    redis.call('HSET', sessions_key, unpack(writes, i, math.min(i + 1999, #writes)))
  end
  for i = 1, #dead, 2000 do
    redis.call('HDEL', sessions_key, unpack(dead, i, math.min(i + 1999, #dead)))
  end
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

-- Drops the records past their keep; returns how many records are left.
local function prune(sessions_key, now)
  local all = redis.call('HGETALL', sessions_key)
  local dead, left = {}, 0
  for i = 1, #all, 2 do
    if is_record_field(all[i]) then
      local _, _, keep = struct.unpack('>BBI6', all[i + 1])
      if keep <= now then
        dead[#dead + 1] = all[i]
      else
        left = left + 1
      end
    end
  end
  for i = 1, #dead, 2000 do
    redis.call('HDEL', sessions_key, unpack(dead, i, math.min(i + 1999, #dead)))
  end
  return left
end
