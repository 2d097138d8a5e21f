package chaos_test

import (
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"
)

// decideLoad sends POST /v1/decide at a constant rate (an open model: requests are
// sent on schedule whether or not earlier ones were answered) for d, with a new
// user each request, and returns every result.
func decideLoad(url, key string, perSecond int, d time.Duration) []vegeta.Result {
	var n atomic.Int64
	header := http.Header{"Authorization": {"Bearer " + key}, "Content-Type": {"application/json"}}
	targeter := func(t *vegeta.Target) error {
		t.Method, t.URL, t.Header = http.MethodPost, url+"/v1/decide", header
		t.Body = []byte(`{"user_id":"user-` + strconv.FormatInt(n.Add(1), 10) + `","attributes":{"country":"US"}}`)
		return nil
	}
	attacker := vegeta.NewAttacker(vegeta.Timeout(10*time.Second), vegeta.Workers(32), vegeta.MaxWorkers(256))
	var out []vegeta.Result
	for r := range attacker.Attack(targeter, vegeta.Rate{Freq: perSecond, Per: time.Second}, d, "decide") {
		out = append(out, *r)
	}
	return out
}
