package testenv

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
)

// The management API is not enabled on the development machines, so its client is
// checked against a fake.
func TestMgmtAPI(t *testing.T) {
	var mu sync.Mutex
	var got []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		user, pass, _ := r.BasicAuth()
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		got = append(got, r.Method+" "+r.URL.EscapedPath()+" "+user+":"+pass+" "+string(body))
		mu.Unlock()
		if r.URL.Path == "/api/vhosts/missing" {
			http.Error(w, `{"error":"Object Not Found"}`, http.StatusNotFound)
			return
		}
		w.WriteHeader(http.StatusCreated)
	}))
	defer srv.Close()

	m := &mgmtAPI{base: srv.URL, user: "u", pass: "p"}
	ctx := context.Background()
	if err := m.create(ctx, "lift_test_1", "u"); err != nil {
		t.Fatal(err)
	}
	if err := m.delete(ctx, "lift_test_1"); err != nil {
		t.Fatal(err)
	}
	if err := m.delete(ctx, "missing"); err == nil {
		t.Fatal("want an error for a 404")
	}
	want := []string{
		"PUT /api/vhosts/lift_test_1 u:p {}",
		`PUT /api/permissions/lift_test_1/u u:p {"configure":".*","write":".*","read":".*"}`,
		"DELETE /api/vhosts/lift_test_1 u:p ",
		"DELETE /api/vhosts/missing u:p ",
	}
	if len(got) != len(want) {
		t.Fatalf("requests:\n%q\nwant\n%q", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("request %d = %q, want %q", i, got[i], want[i])
		}
	}
}
