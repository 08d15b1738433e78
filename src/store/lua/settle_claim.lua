-- Settles a username's claim, on its one key, only while the claim is still the caller's
-- (ARGV[1], the claiming user's id): ARGV[2] 'keep' makes it permanent, 'drop' deletes it.
-- Returns 1 when it did.
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return 0
end
if ARGV[2] == 'keep' then
  redis.call('PERSIST', KEYS[1])
else
  redis.call('DEL', KEYS[1])
end
return 1
