-- wrk script: POST a realistic /flags?v=2 body (python SDK shape) with a varying distinct id.
local token = os.getenv("VEXIL_TOKEN")
local counter = 0
request = function()
  counter = counter + 1
  local body = string.format([[{"token":"%s","distinct_id":"user-%d","groups":{"company":"acme-%d"},"person_properties":{"email":"user%d@example.com","plan":"pro","country":"US","age":34,"$app_version":"3.4.1","$browser":"Chrome","utm_source":"newsletter","signup_date":"2025-06-01","beta_opt_in":true,"seats":12},"group_properties":{"company":{"seats":42,"industry":"saas"}},"geoip_disable":true}]], token, counter, counter % 97, counter)
  return wrk.format("POST", "/flags/?v=2", {["Content-Type"] = "application/json", ["User-Agent"] = "posthog-python/7.91.1"}, body)
end
