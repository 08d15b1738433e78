-- One refresh, decided atomically by the state table at the top of src/store/mod.rs. The
-- in-process store (src/store/memory.rs) takes the same steps; the contract tests hold the two
-- to the same answers. Runs after records.lua.
-- Returns {outcome} or {kind, refresh jti (packed), iat, exp, session end ('' for none),
-- remember '1'/'0'}.

local user_key = KEYS[1]
local sessions_key = KEYS[2]
local legacy_session_key = KEYS[3]
local legacy_bl_key = KEYS[4]

local sid = ARGV[1]
local jti = ARGV[2]
local jti_iat = ARGV[3]
local jti_exp = ARGV[4]
local foreign = ARGV[5]
local adopt = ARGV[6]
local epoch = ARGV[7]
local rotate = ARGV[8]
local blacklist = ARGV[9]
local reuse_interval_ms = ARGV[10]
local idle_timeout_ms = ARGV[11]
local leeway = ARGV[12]
local next_jti = ARGV[13]
local next_iat = ARGV[14]
local next_exp = ARGV[15]
local adopt_end = ARGV[16]
local user_agent = ARGV[17]
local client_address = ARGV[18]

-- Redis's clock, not the caller's: instances whose clocks differ, and a command that runs late
-- (after a stalled Redis comes back), still measure intervals from the moment things happened.
local now = now_ms()
local interval = tonumber(reuse_interval_ms)

local user = redis.call('HMGET', user_key, 'active', 'cut')
if not user[1] then
  return {'no_user'}
end
if user[1] ~= '1' then
  return {'inactive'}
end
if foreign == '1' and (tonumber(jti_iat) < tonumber(epoch)
    or tonumber(jti_iat) <= tonumber(user[2] or '0')) then
  return {'invalid'}
end

local s = decode(redis.call('HGET', sessions_key, sid), now)
  or bring_over(sessions_key, sid, legacy_session_key, now)

local function save()
  redis.call('HSET', sessions_key, sid, encode(s))
end

if not s then
  -- A token minted elsewhere starts its session at its first refresh here.
  if foreign ~= '1' or adopt ~= '1' then
    return {'invalid'}
  end
  if redis.call('EXISTS', legacy_bl_key) == 1 then
    -- Logged out while the previous layout was in use.
    return {'revoked'}
  end
  s = {flags = 0, keep = keep_ms(jti_exp, leeway), created = now, last = 0, cur = jti,
    retired = {}, ua = user_agent, ip = client_address}
  if adopt_end ~= '' then
    s.end_s = tonumber(adopt_end)
  end
  save()
  keep_hash_until(sessions_key, s.keep)
end
if has(s.flags, REVOKED) then
  return {'revoked'}
end
if idle_timeout_ms ~= '' and now >= (s.last > 0 and s.last or s.created) + tonumber(idle_timeout_ms) then
  revoke_record(s)
  save()
  return {'invalid'}
end
if s.end_s and math.floor(now / 1000) >= s.end_s then
  return {'invalid'}
end

local is_current = jti == s.cur
local is_pending = s.pend ~= nil and jti == s.pend
if not is_current and not is_pending then
  local at = retired_at(s, jti, legacy_bl_key)
  local forgiven = blacklist ~= '1' or (at and now < at + interval)
  if not forgiven then
    -- Retired too long ago, or never issued by this session: someone holds a copy.
    revoke_record(s)
    save()
    return {'reuse'}
  end
end

local remember = '1'
if has(s.flags, BROWSER) then
  remember = '0'
end
local end_out = ''
if s.end_s then
  end_out = string.format('%d', s.end_s)
end
s.last = now
forget_old_retirements(s, now, interval)

if rotate ~= '1' then
  save()
  return {'kept', jti, jti_iat, jti_exp, end_out, remember}
end

if s.pend and not is_pending then
  -- The current token again, or a recently retired one: the same pending successor.
  save()
  local kind = 'forgiven'
  if is_current then
    kind = 'repeated'
  end
  return {kind, s.pend, string.format('%d', s.pend_iat), string.format('%d', s.pend_exp),
    end_out, remember}
end

local exp = tonumber(next_exp)
if s.end_s then
  exp = math.min(exp, s.end_s)
end
local kind
if is_pending then
  -- The successor is presented: it becomes current and its parent is retired now.
  kind = 'promoted'
  if blacklist == '1' then
    s.retired[#s.retired + 1] = {s.cur, now}
  end
  s.cur = s.pend
elseif is_current then
  kind = 'issued'
else
  kind = 'forgiven'
end
s.pend, s.pend_iat, s.pend_exp = next_jti, tonumber(next_iat), exp
-- The record outlives every token of its family, so that an ended family stays ended.
local keep = keep_ms(exp, leeway)
local extend = keep > s.keep
if extend then
  s.keep = keep
end
save()
if extend then
  redis.call('PEXPIREAT', sessions_key, string.format('%d', keep), 'GT')
end
exp = string.format('%d', exp)
return {kind, next_jti, next_iat, exp, end_out, remember}
