-- Ends sessions: a logout (with the presented refresh token), "log out everywhere" (`all`: every
-- session of the user, honoured only for a live token; a token retired past its interval is
-- reuse and ends its own session only), or one session by id (no token). A token minted
-- elsewhere whose session was never seen gets a revoked record, so that it cannot start one
-- later. An ended session's record refuses every token of its family, the presented one
-- included, until the last of them expires. Runs after records.lua.
-- Returns 'revoked' (something live was ended), 'reuse' or 'nothing'.

local sessions_key = KEYS[1]
local legacy_session_key = KEYS[2]
local legacy_bl_key = KEYS[3]
local legacy_index_key = KEYS[4]

local sid = ARGV[1]
local jti = ARGV[2]
local jti_exp = ARGV[3]
local leeway = ARGV[4]
local foreign = ARGV[5]
local all = ARGV[6]
local blacklist = ARGV[7]
local reuse_interval_ms = ARGV[8]
local legacy_session_prefix = ARGV[9]

local now = now_ms()
local keep = math.min((jti_exp + leeway) * 1000, 281474976710655)

local raw = redis.call('HGET', sessions_key, sid)
if raw and struct.unpack('>I6', raw, 3) <= now then
  raw = nil
end
if not raw then
  raw = rare().bring_over(sessions_key, sid, legacy_session_key, now)
end
local open = raw ~= nil and #raw > 8
local at
local live
if jti == '' then
  live = open
elseif open then
  local flags, _, _, cur, pend, _, _, n, retired = read_head(raw)
  at = retired_at(raw, n, retired, jti)
  if not at and flags % 32 >= 16 then
    at = tonumber(redis.call('GET', legacy_bl_key))
  end
  live = jti == cur or jti == pend or blacklist ~= '1'
    or (at and now < at + tonumber(reuse_interval_ms))
elseif raw then
  live = false
else
  -- A token minted elsewhere that never started a session: live unless it was logged out while
  -- the previous layout was in use.
  live = foreign == '1' and keep > now and redis.call('EXISTS', legacy_bl_key) == 0
end

local outcome = 'nothing'
if all == '1' then
  if live then
    outcome = 'revoked'
    rare().end_all(sessions_key, legacy_index_key, legacy_session_prefix, now)
    raw = redis.call('HGET', sessions_key, sid)
  elseif open then
    outcome = 'reuse'
  end
elseif live then
  outcome = 'revoked'
end

if raw then
  if #raw > 8 then
    local _, flags, record_keep = struct.unpack('>BBI6', raw)
    redis.call('HSET', sessions_key, sid, revoked(flags, record_keep))
  end
elseif foreign == '1' and jti ~= '' and keep > now then
  redis.call('HSET', sessions_key, sid, revoked(0, keep))
  rare().keep_hash_until(sessions_key, keep)
end
return outcome
