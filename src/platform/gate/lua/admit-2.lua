--[[
  Admits one purchase attempt: every line, or none.

  Input (2 keys per line; on a Redis Cluster the gate calls this with one line at a time,
  because two items live in different slots):
    KEYS[2i-1]  <prefix>:gate:{<saleItemId>}:item   hash: available, limit, startsAt, endsAt, epoch
    KEYS[2i]    <prefix>:gate:{<saleItemId>}:quota  hash: userId -> units held or bought

    ARGV[1]     generation the caller believes current (the value of <prefix>:gate:{fence}:epoch)
    ARGV[2]     userId
    ARGV[3]     now, epoch ms
    ARGV[3+i]   quantity of line i

  Output:
    {0, available_1, ..., available_n}   admitted; available after the decision, per line
    {code, i, available}                 refused at line i, nothing changed:
      1 sold_out, 2 limit_exceeded, 3 sale_not_active,
      4 unknown_item     (no item hash: never loaded, or lost with Redis's data)
      5 gate_not_loaded  (the item was loaded under another generation: fenced)
]]
local token, user, now = ARGV[1], ARGV[2], tonumber(ARGV[3])
local n = #KEYS / 2

-- Lines may name one item twice: decide against running totals, then write.
local before, avail, taken = {}, {}, {}
for i = 1, n do
  local itemKey, quotaKey = KEYS[2 * i - 1], KEYS[2 * i]
  local q = tonumber(ARGV[3 + i])
  local f = redis.call('HMGET', itemKey, 'available', 'limit', 'startsAt', 'endsAt', 'epoch')
  if not f[1] then return {4, i, 0} end
  if f[5] ~= token then return {5, i, 0} end
  if avail[itemKey] == nil then
    before[itemKey] = tonumber(f[1])
    avail[itemKey] = before[itemKey]
    taken[itemKey] = tonumber(redis.call('HGET', quotaKey, user) or '0')
  end
  if now < tonumber(f[3]) or now >= tonumber(f[4]) then return {3, i, before[itemKey]} end
  if avail[itemKey] < q then return {1, i, before[itemKey]} end
  if taken[itemKey] + q > tonumber(f[2]) then return {2, i, before[itemKey]} end
  avail[itemKey] = avail[itemKey] - q
  taken[itemKey] = taken[itemKey] + q
end

local result = {0}
for i = 1, n do
  local q = tonumber(ARGV[3 + i])
  result[i + 1] = redis.call('HINCRBY', KEYS[2 * i - 1], 'available', -q)
  redis.call('HINCRBY', KEYS[2 * i], user, q)
end
return result
