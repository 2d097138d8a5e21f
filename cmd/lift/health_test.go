package main

import (
	"context"
	"errors"
	"net"
	"testing"

	"github.com/liftlab/lift/internal/chconn"
	"github.com/liftlab/lift/internal/derrors"
)

// With ClickHouse down (a shard without a live replica), the ingest and worker roles
// are unavailable, while the roles that serve decisions stay ready, degraded.
func TestClickHouseReadinessByRole(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	health, err := chconn.NewHealth(addr, "lift", "")
	if err != nil {
		t.Fatal(err)
	}
	defer health.Close()
	for role, unavailable := range map[string]bool{"all": false, "api": false, "ingest": true, "worker": true} {
		s := &server{role: role, chHealth: health}
		err := s.clickHouseReady(context.Background())
		if err == nil || !errors.Is(err, chconn.ErrShardDown) {
			t.Fatalf("role %s: %v, want the shard down", role, err)
		}
		if errors.Is(err, derrors.ErrUnavailable) != unavailable {
			t.Errorf("role %s: %v; of kind ErrUnavailable: %v, want %v", role, err, !unavailable, unavailable)
		}
	}
}
