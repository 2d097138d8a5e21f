package config_test

import (
	"strings"
	"testing"

	"github.com/liftlab/lift/internal/config"
)

func TestRatesAndAdminAddr(t *testing.T) {
	env := func(kv map[string]string) func(string) string { return func(k string) string { return kv[k] } }
	c, err := config.Load(env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if c.AdminAddr != "" || c.EventsRate != 2000 || c.DecideRate != 20_000 || c.APIRate != 100 {
		t.Errorf("defaults: admin %q, rates %d %d %d", c.AdminAddr, c.EventsRate, c.DecideRate, c.APIRate)
	}
	c, err = config.Load(env(map[string]string{"LIFT_ADMIN_ADDR": "127.0.0.1:6060", "LIFT_DECIDE_RATE": "0", "LIFT_API_RATE": "5"}))
	if err != nil || c.AdminAddr != "127.0.0.1:6060" || c.DecideRate != 0 || c.APIRate != 5 {
		t.Errorf("set: %+v, %v", c, err)
	}
	for _, bad := range []string{"-1", "x", "1.5"} {
		_, err := config.Load(env(map[string]string{"LIFT_EVENTS_RATE": bad}))
		if err == nil || !strings.Contains(err.Error(), "LIFT_EVENTS_RATE") {
			t.Errorf("LIFT_EVENTS_RATE=%s: error %v, want one naming the variable", bad, err)
		}
	}
}
