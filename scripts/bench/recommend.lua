-- wrk script: POST /v1/recommend for random users whose recent items
-- scripts/bench/recmodel stored (bench-user-1 … bench-user-10000).
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
if os.getenv("LIFT_KEY") then
  wrk.headers["Authorization"] = "Bearer " .. os.getenv("LIFT_KEY")
end

request = function()
  local body = string.format('{"user_id":"bench-user-%d","recommender":"similar","n":10}', math.random(1, 10000))
  return wrk.format(nil, "/v1/recommend", nil, body)
end
