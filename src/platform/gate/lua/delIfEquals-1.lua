--[[
  Deletes a key only if it still holds the expected value: releases the rebuild lock only if it
  is still ours, and drops the fence only if no other process has replaced it meanwhile.

  Input:
    KEYS[1]   <prefix>:gate:{fence}:rebuild-lock or <prefix>:gate:{fence}:epoch
    ARGV[1]   expected value

  Output:
    1 deleted, 0 not (absent or another value)
]]
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
