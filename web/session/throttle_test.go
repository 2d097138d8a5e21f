package session

import (
	"testing"
	"time"
)

func TestThrottle(t *testing.T) {
	th := NewThrottle(3, time.Hour)
	for i := range 3 {
		if !th.Allow("ip:1") {
			t.Fatalf("attempt %d refused within the burst", i+1)
		}
	}
	if th.Allow("ip:1") {
		t.Error("attempt over the burst allowed")
	}
	if !th.Allow("ip:2") {
		t.Error("another key shares the first one's bucket")
	}
}
