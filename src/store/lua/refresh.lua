-- One refresh, decided atomically by the state table at the top of src/store/mod.rs. The
-- in-process store (src/store/memory.rs) takes the same steps; the contract tests hold the two
-- to the same answers. Runs after records.lua.
-- Returns {outcome} or {kind, refresh jti (packed), iat, exp, session end (0 for none),
-- remember (1, or 0 for browser-session cookies)}.

local user_key = KEYS[1]
local sessions_key = KEYS[2]
local legacy_session_key = KEYS[3]
local legacy_bl_key = KEYS[4]

local sid = ARGV[1]
local jti = ARGV[2]
local next_jti = ARGV[3]
local params = ARGV[4]
local user_agent = ARGV[5]
local client_address = ARGV[6]

-- The numbers of the call in one argument (few arguments cost Redis less to hand over), packed
-- by `refresh_params` in src/store/redis.rs. `switches`: 1 foreign (no sid), 2 adopt foreign
-- tokens, 4 rotate, 8 blacklist, 16 an idle timeout, 32 an end for an adopted session.
local switches, jti_iat, jti_exp, epoch, reuse_interval_ms, idle_timeout_ms, leeway, next_iat,
  next_exp, adopt_end = struct.unpack('>BI5I5I5I6I6I5I5I5I5', params)
local foreign = switches % 2 == 1
local blacklist = switches % 16 >= 8

-- Redis's clock, not the caller's: instances whose clocks differ, and a command that runs late
-- (after a stalled Redis comes back), still measure intervals from the moment things happened.
local now = now_ms()

local raw = redis.call('HGET', sessions_key, sid)
if raw and struct.unpack('>I6', raw, 3) <= now then
  -- Past its keep: gone, whatever Redis has not swept yet.
  raw = nil
end

-- The user is read only where the record cannot vouch for it. A live record exists only while
-- its user is active: deactivating or deleting a user ends all of its sessions in the same
-- script (revoke_all.lua, import_user.lua), and create.lua never starts a live one for a user
-- who is not active. So the answers are those of the state table, user first.
if foreign or not raw or #raw == 8 then
  local user = redis.call('HMGET', user_key, 'active', 'cut')
  if not user[1] then
    return {'no_user'}
  end
  if user[1] ~= '1' then
    return {'inactive'}
  end
  if foreign and (jti_iat < epoch or jti_iat <= tonumber(user[2] or '0')) then
    return {'invalid'}
  end
end

if not raw then
  raw = rare().bring_over(sessions_key, sid, legacy_session_key, now)
end
if not raw then
  -- A token minted elsewhere starts its session at its first refresh here.
  if not foreign or switches % 4 < 2 then
    return {'invalid'}
  end
  if redis.call('EXISTS', legacy_bl_key) == 1 then
    -- Logged out while the previous layout was in use.
    return {'revoked'}
  end
  local end_s = nil
  if switches % 64 >= 32 then
    end_s = adopt_end
  end
  local keep = math.min((jti_exp + leeway) * 1000, 281474976710655)
  local m = rare()
  raw = m.record(0, keep, jti, end_s, now, client_address, user_agent)
  redis.call('HSET', sessions_key, sid, raw)
  m.keep_hash_until(sessions_key, keep)
end
if #raw == 8 then
  return {'revoked'}
end

local flags, keep, last, cur, pend, pend_iat, pend_exp, n, retired, tail = read_head(raw)

if switches % 32 >= 16 then
  local since = last
  if since == 0 then
    since = struct.unpack('>I6', raw, tail)
  end
  if now >= since + idle_timeout_ms then
    redis.call('HSET', sessions_key, sid, revoked(flags, keep))
    return {'invalid'}
  end
end
local end_s = 0
if flags % 16 >= 8 then
  end_s = struct.unpack('>I5', raw, tail + 6)
  if math.floor(now / 1000) >= end_s then
    return {'invalid'}
  end
end

local is_current = jti == cur
local is_pending = pend ~= '' and jti == pend
if not is_current and not is_pending and blacklist then
  -- When the presented token was retired, while the record remembers it (its interval runs);
  -- a record of the previous layout may keep it in that layout's blacklist key.
  local at = retired_at(raw, n, retired, jti)
  if not at and flags % 32 >= 16 then
    at = tonumber(redis.call('GET', legacy_bl_key))
  end
  if not (at and now < at + reuse_interval_ms) then
    -- Retired too long ago, or never issued by this session: someone holds a copy.
    redis.call('HSET', sessions_key, sid, revoked(flags, keep))
    return {'reuse'}
  end
end

local remember = 1
if flags % 4 >= 2 then
  remember = 0
end
local retirements, count = recent_retirements(raw, n, retired, now, reuse_interval_ms)

if switches % 8 < 4 or (pend ~= '' and not is_pending) then
  -- Rotation off: the presented token stays. Or the current token again, or a recently retired
  -- one: the same pending successor.
  redis.call('HSET', sessions_key, sid, write_head(flags, keep, now, cur, pend, pend_iat,
    pend_exp, retirements, count) .. string.sub(raw, tail))
  if switches % 8 < 4 then
    return {'kept', jti, jti_iat, jti_exp, end_s, remember}
  end
  local kind = 'forgiven'
  if is_current then
    kind = 'repeated'
  end
  return {kind, pend, pend_iat, pend_exp, end_s, remember}
end

local exp = next_exp
if end_s > 0 and end_s < exp then
  exp = end_s
end
local kind
if is_pending then
  -- The successor is presented: it becomes current and its parent is retired now.
  kind = 'promoted'
  if blacklist then
    if count == 255 then
      -- Only a client gone wild retires 255 tokens within one interval: the oldest goes.
      retirements = string.sub(retirements, 8 + string.byte(retirements, 7))
      count = count - 1
    end
    retirements = retirements .. struct.pack('>I6Bc0', now, #cur, cur)
    count = count + 1
  end
  cur = pend
elseif is_current then
  kind = 'issued'
else
  kind = 'forgiven'
end
-- The record outlives every token of its family, so that an ended family stays ended.
local keep_exp = math.min((exp + leeway) * 1000, 281474976710655)
local extend = keep_exp > keep
if extend then
  keep = keep_exp
end
redis.call('HSET', sessions_key, sid, write_head(flags, keep, now, cur, next_jti, next_iat, exp,
  retirements, count) .. string.sub(raw, tail))
if extend then
  redis.call('PEXPIREAT', sessions_key, string.format('%d', keep), 'GT')
end
return {kind, next_jti, next_iat, exp, end_s, remember}
