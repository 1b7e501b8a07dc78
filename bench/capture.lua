-- wrk script: POST a /batch/ body of 10 events (posthog-python shape) with unique uuids.
local token = os.getenv("VEXIL_TOKEN")
local counter = 0
local function uuid(n, i)
  return string.format("00000000-0000-4000-8000-%012x", n * 16 + i)
end
request = function()
  counter = counter + 1
  local events = {}
  for i = 0, 9 do
    events[#events + 1] = string.format(
      [[{"event":"$pageview","distinct_id":"user-%d","properties":{"$lib":"posthog-python","$current_url":"https://example.com/p/%d","plan":"pro"},"timestamp":"2026-01-02T03:04:05+00:00","uuid":"%s"}]],
      counter % 5000, i, uuid(counter, i))
  end
  local body = string.format([[{"api_key":"%s","batch":[%s],"sent_at":"2026-01-02T03:04:05+00:00"}]], token, table.concat(events, ","))
  return wrk.format("POST", "/batch/", {["Content-Type"] = "application/json"}, body)
end
