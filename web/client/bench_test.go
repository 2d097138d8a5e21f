package client_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/liftlab/lift/web/client"
)

// BenchmarkDecideCached is a decision answered from the local cache, what most of a
// backend's decide calls cost (10,000 users cycling through a warm cache).
func BenchmarkDecideCached(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `{"user_id":"u","decisions":{"hero":{"variant":"bold","value":null,"reason":"split","experiment":true}}}`)
	}))
	defer srv.Close()
	c, err := client.New(client.Config{BaseURL: srv.URL, Key: "k", CacheTTL: time.Hour})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	const users = 10_000
	ids := make([]string, users)
	attrs := map[string]any{"country": "US", "device": "mobile"}
	for i := range ids {
		ids[i] = fmt.Sprint("user-", i)
		if _, err := c.Decide(ctx, ids[i], attrs); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		if d, _ := c.Decide(ctx, ids[i%users], attrs); d.Variant("hero") != "bold" {
			b.Fatal("wrong decision")
		}
	}
}
