-- wrk script: GET the definitions feed, optionally with If-None-Match (→ 304).
local token = os.getenv("VEXIL_TOKEN")
local secret = os.getenv("VEXIL_SECRET")
local etag = os.getenv("VEXIL_ETAG")
request = function()
  local headers = {["Authorization"] = "Bearer " .. secret}
  if etag and etag ~= "" then headers["If-None-Match"] = etag end
  return wrk.format("GET", "/flags/definitions?token=" .. token .. "&send_cohorts", headers)
end
