--[[
  Pre-deducts one purchase (seed 003): checks the stock and the buyer's limit and takes both, in one
  script so no other request can run between the check and the deduction.

  Input:
    KEYS[1]  <namespace>:{<itemId>}:stock   string: units left
    KEYS[2]  <namespace>:{<itemId>}:buyers  hash: userId -> units bought
    ARGV[1]  userId
    ARGV[2]  quantity
    ARGV[3]  per-user limit

  Output:
    0 taken; 1 sold_out, 2 limit_exceeded, 3 unknown_item (no stock key): nothing changed
]]
local left = tonumber(redis.call('GET', KEYS[1]))
if not left then return 3 end
local quantity, limit = tonumber(ARGV[2]), tonumber(ARGV[3])
if left < quantity then return 1 end
local held = tonumber(redis.call('HGET', KEYS[2], ARGV[1]) or '0')
if held + quantity > limit then return 2 end
redis.call('DECRBY', KEYS[1], quantity)
redis.call('HINCRBY', KEYS[2], ARGV[1], quantity)
return 0
