-- wrk script: POST /v1/decide for random users with typical attributes.
local countries = {"US", "CA", "GB", "DE", "FR"}
local devices = {"mobile", "desktop"}
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
if os.getenv("LIFT_KEY") then
  wrk.headers["Authorization"] = "Bearer " .. os.getenv("LIFT_KEY")
end

request = function()
  local body = string.format(
    '{"user_id":"user-%d","attributes":{"country":"%s","device":"%s","plan":"free"}}',
    math.random(1, 10000000), countries[math.random(#countries)], devices[math.random(#devices)])
  return wrk.format(nil, "/v1/decide", nil, body)
end
