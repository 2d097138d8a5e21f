# Sourced by scripts/bench-http and scripts/bench-load: the decision benchmarks'
# configuration, 10 running experiments (every third with targeting) and 10 flags of
# two rules, created through the management API; then checks that one /v1/decide
# answers all 20.
#   seed_decide_config ADDR SERVER_KEY CLIENT_KEY
seed_decide_config() {
  local addr=$1 server_key=$2 client_key=$3 i targeting n
  api() { curl -sf -o /dev/null -X POST -H "Authorization: Bearer $server_key" -H 'Content-Type: application/json' "http://$addr/api/v1/$1" -d "$2"; }
  for i in $(seq 0 9); do
    targeting=""
    [[ $((i % 3)) == 0 ]] && targeting=',"targeting":{"country":{"$in":["US","CA","GB"]}}'
    api experiments "{\"key\":\"exp-$i\",\"status\":\"running\",\"variants\":[{\"key\":\"control\",\"weight\":0.5,\"value\":{\"img\":\"a.png\"}},{\"key\":\"treatment\",\"weight\":0.5,\"value\":{\"img\":\"b.png\"}}]$targeting}"
    api flags "{\"key\":\"flag-$i\",\"type\":\"boolean\",\"default\":false,\"rules\":[{\"condition\":{\"plan\":\"enterprise\"},\"value\":true},{\"rollout\":0.2,\"value\":true,\"variant\":\"on\"}]}"
  done
  sleep 1.5 # the snapshot follows within a second
  n=$(curl -sf -X POST -H "Authorization: Bearer $client_key" "http://$addr/v1/decide" -d '{"user_id":"u1"}' | grep -o '"reason"' | wc -l)
  [[ $n == 20 ]] || { echo "expected 20 decisions, got $n" >&2; return 1; }
}
