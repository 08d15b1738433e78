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
local keep = keep_ms(jti_exp, leeway)

local s = decode(redis.call('HGET', sessions_key, sid), now)
  or bring_over(sessions_key, sid, legacy_session_key, now)
local open = s ~= nil and not has(s.flags, REVOKED)
local at = false
if jti ~= '' and open then
  at = retired_at(s, jti, legacy_bl_key)
elseif jti ~= '' and not s then
  -- Logged out while the previous layout was in use.
  at = redis.call('GET', legacy_bl_key) or false
end

local live
if jti == '' then
  live = open
elseif s then
  live = open and (jti == s.cur or jti == s.pend or blacklist ~= '1'
    or (at and now < tonumber(at) + tonumber(reuse_interval_ms)))
else
  live = foreign == '1' and not at and keep > now
end

local outcome = 'nothing'
if all == '1' then
  if live then
    outcome = 'revoked'
    end_all(sessions_key, legacy_index_key, legacy_session_prefix, now)
    s = decode(redis.call('HGET', sessions_key, sid), now)
  elseif open then
    outcome = 'reuse'
  end
elseif live then
  outcome = 'revoked'
end

if s then
  if not has(s.flags, REVOKED) then
    revoke_record(s)
    redis.call('HSET', sessions_key, sid, encode(s))
  end
elseif foreign == '1' and jti ~= '' and keep > now then
  redis.call('HSET', sessions_key, sid, encode({flags = REVOKED, keep = keep}))
  keep_hash_until(sessions_key, keep)
end
return outcome
