package main

import (
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/liftlab/lift/internal/testenv"
)

// TestKeyOriginsAndRotation: a client key with an allow-list serves pages on those
// origins only (and lift's own), and rotating a key loses no request: the old
// secret works until its grace period ends, the new one at once.
func TestKeyOriginsAndRotation(t *testing.T) {
	if testing.Short() {
		t.Skip("runs lift")
	}
	f := newFixture(t)
	p := f.start(t)
	var created struct {
		Key  string
		Info struct {
			ID             int64
			AllowedOrigins []string `json:"allowed_origins"`
		}
	}
	f.server.want(201, "POST", "/api/v1/keys", `{"name":"shop","kind":"client","allowed_origins":["https://shop.example","https://*.brand.example"]}`, &created)
	f.server.want(422, "POST", "/api/v1/keys", `{"name":"bad","kind":"client","allowed_origins":["shop.example"]}`, nil)
	shop := client{t: t, base: p.url, key: created.Key}
	// A new key is served within a second (LISTEN/NOTIFY).
	testenv.Eventually(t, 5*time.Second, "the new key to be accepted", func() bool { return shop.do("POST", "/v1/decide", `{"user_id":"u1"}`, nil).StatusCode == 200 })
	for origin, want := range map[string]int{
		"https://shop.example": 200, "https://eu.brand.example": 200, "https://evil.example": 403,
		p.url: 200, // lift's own pages
		"":    200, // no browser: a server-side call
	} {
		var headers []string
		if origin != "" {
			headers = []string{"Origin", origin}
		}
		resp := shop.do("POST", "/v1/decide", `{"user_id":"u1"}`, nil, headers...)
		if resp.StatusCode != want {
			t.Errorf("Origin %q: %d, want %d", origin, resp.StatusCode, want)
		}
	}
	// Changing the list takes effect as fast.
	f.server.want(200, "PUT", "/api/v1/keys/"+strconv.FormatInt(created.Info.ID, 10)+"/origins", `{"allowed_origins":["https://evil.example"]}`, nil)
	testenv.Eventually(t, 5*time.Second, "the changed origin list to take effect", func() bool {
		return shop.do("POST", "/v1/decide", `{"user_id":"u1"}`, nil, "Origin", "https://evil.example").StatusCode == 200
	})
	f.server.want(200, "PUT", "/api/v1/keys/"+strconv.FormatInt(created.Info.ID, 10)+"/origins", `{"allowed_origins":[]}`, nil)

	// Rotation under traffic: clients switch to the new secret some time after it
	// was issued; no request fails on the way.
	var current atomic.Value
	current.Store(created.Key)
	var failures, sent atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				req, _ := http.NewRequest("POST", p.url+"/v1/decide", strings.NewReader(`{"user_id":"u1"}`))
				req.Header.Set("Authorization", "Bearer "+current.Load().(string))
				resp, err := http.DefaultClient.Do(req)
				sent.Add(1)
				if err != nil || resp.StatusCode != 200 {
					failures.Add(1)
				}
				if resp != nil {
					resp.Body.Close()
				}
			}
		}()
	}
	time.Sleep(300 * time.Millisecond)
	var rotated struct {
		Key  string
		Info struct{ ID int64 }
	}
	f.server.want(201, "POST", "/api/v1/keys/"+strconv.FormatInt(created.Info.ID, 10)+"/rotate", `{"grace":"3s"}`, &rotated)
	f.server.want(409, "POST", "/api/v1/keys/"+strconv.FormatInt(created.Info.ID, 10)+"/rotate", `{"grace":"3s"}`, nil)
	time.Sleep(500 * time.Millisecond) // clients still on the old secret
	current.Store(rotated.Key)
	time.Sleep(500 * time.Millisecond)
	close(stop)
	wg.Wait()
	if failures.Load() > 0 {
		t.Errorf("%d of %d requests failed during the rotation", failures.Load(), sent.Load())
	}
	t.Logf("%d requests during the rotation, %d failed", sent.Load(), failures.Load())
	testenv.Eventually(t, 10*time.Second, "the rotated-out key to be refused", func() bool { return shop.do("POST", "/v1/decide", `{"user_id":"u1"}`, nil).StatusCode == 401 })
	next := client{t: t, base: p.url, key: rotated.Key}
	next.want(200, "POST", "/v1/decide", `{"user_id":"u1"}`, nil)
	// The rotation is audited.
	var audit struct{ Items []struct{ Action string } }
	f.server.want(200, "GET", "/api/v1/audit?entity=api_key&key="+strconv.FormatInt(created.Info.ID, 10), "", &audit)
	if len(audit.Items) == 0 || audit.Items[0].Action != "rotate" {
		t.Errorf("audit of the rotated key: %+v", audit.Items)
	}
}
