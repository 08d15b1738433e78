-- Ends sessions: a logout (with the presented refresh token, which is also blacklisted), "log out
-- everywhere" (`all`: every session of the user, honoured only for a live token; a token retired
-- past its interval is reuse and ends its own session only), or one session by id (no token).
-- A token minted elsewhere whose session was never seen gets a revoked record, so that it cannot
-- start one later.
-- Returns 'revoked' (something live was ended), 'reuse' or 'nothing'.

local session_key = KEYS[1]
local index_key = KEYS[2]
local presented_bl_key = KEYS[3]

local sid = ARGV[1]
local jti = ARGV[2]
local jti_exp = ARGV[3]
local leeway = ARGV[4]
local foreign = ARGV[5]
local all = ARGV[6]
local blacklist = ARGV[7]
local reuse_interval_ms = ARGV[8]
local session_prefix = ARGV[9]

local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local now_str = string.format('%d', now)
local keep = (tonumber(jti_exp) + tonumber(leeway)) * 1000

local s = redis.call('HMGET', session_key, 'cur', 'rev', 'pend')
local exists = s[1] ~= false
local open = exists and s[2] ~= '1'
local retired_at = false
if jti ~= '' then
  retired_at = redis.call('GET', presented_bl_key) or false
end

local live
if jti == '' then
  live = open
elseif exists then
  live = open and (jti == s[1] or jti == s[3] or blacklist ~= '1'
    or (retired_at and now < tonumber(retired_at) + tonumber(reuse_interval_ms)))
else
  live = foreign == '1' and not retired_at and keep > now
end

local outcome = 'nothing'
if all == '1' then
  if live then
    outcome = 'revoked'
    for _, other in ipairs(redis.call('ZRANGE', index_key, 0, -1)) do
      local key = session_prefix .. other
      if redis.call('EXISTS', key) == 1 and redis.call('HGET', key, 'rev') ~= '1' then
        redis.call('HSET', key, 'rev', '1')
        redis.call('HDEL', key, 'pend', 'pi', 'pe')
      end
    end
    redis.call('DEL', index_key)
  elseif open then
    outcome = 'reuse'
  end
elseif live then
  outcome = 'revoked'
end

redis.call('ZREM', index_key, sid)
if exists then
  redis.call('HSET', session_key, 'rev', '1')
  redis.call('HDEL', session_key, 'pend', 'pi', 'pe')
elseif foreign == '1' and jti ~= '' and keep > now then
  redis.call('HSET', session_key, 'cur', jti, 'created', now_str, 'rev', '1')
  redis.call('PEXPIREAT', session_key, string.format('%d', keep))
end
if jti ~= '' and keep > now and not retired_at then
  redis.call('SET', presented_bl_key, now_str, 'PXAT', string.format('%d', keep))
end
return outcome
