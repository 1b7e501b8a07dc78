-- wrk script: the flags.lua request, counting answers by status (200 accepted, 503 shed).
local token = os.getenv("VEXIL_TOKEN")
local counter = 0
counts = {}
local threads = {}

setup = function(thread)
  table.insert(threads, thread)
end

init = function()
  counts = {}
end

request = function()
  counter = counter + 1
  local body = string.format([[{"token":"%s","distinct_id":"user-%d","groups":{"company":"acme-%d"},"person_properties":{"email":"user%d@example.com","plan":"pro","country":"US","age":34,"$app_version":"3.4.1","$browser":"Chrome","utm_source":"newsletter","signup_date":"2025-06-01","beta_opt_in":true,"seats":12},"group_properties":{"company":{"seats":42,"industry":"saas"}},"geoip_disable":true}]], token, counter, counter % 97, counter)
  return wrk.format("POST", "/flags/?v=2", {["Content-Type"] = "application/json", ["User-Agent"] = "posthog-python/7.91.1"}, body)
end

response = function(status, headers, body)
  counts[status] = (counts[status] or 0) + 1
end

done = function(summary, latency, requests)
  local total = {}
  for _, thread in ipairs(threads) do
    local c = thread:get("counts")
    for status, n in pairs(c) do
      total[status] = (total[status] or 0) + n
    end
  end
  for status, n in pairs(total) do
    io.write(string.format("status %d: %d\n", status, n))
  end
end
