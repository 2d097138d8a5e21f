package config_test

import (
	"fmt"
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

func TestWebhookAllowNets(t *testing.T) {
	env := func(v string) func(string) string {
		return func(k string) string {
			if k == "LIFT_WEBHOOK_ALLOW_NETS" {
				return v
			}
			return ""
		}
	}
	for v, want := range map[string]string{
		"":                            "[]",
		"none":                        "[]",
		"10.1.0.0/16, 192.168.5.7/32": "[10.1.0.0/16 192.168.5.7/32]",
		"192.168.5.7,fd00:1::/32,::1": "[192.168.5.7/32 fd00:1::/32 ::1/128]",
		"127.0.0.1/32":                "[127.0.0.1/32]",
	} {
		c, err := config.Load(env(v))
		if err != nil {
			t.Errorf("%q: %v", v, err)
			continue
		}
		if got := fmt.Sprint(c.WebhookAllowNets); got != want {
			t.Errorf("%q: %s, want %s", v, got, want)
		}
	}
	for _, bad := range []string{"10.1.2.3/16", "10.1.0.0/33", "crm.internal", "10.1.0.0/16,x", "fe80::1%eth0", "::ffff:10.0.0.0/104"} {
		_, err := config.Load(env(bad))
		if err == nil || !strings.Contains(err.Error(), "LIFT_WEBHOOK_ALLOW_NETS") {
			t.Errorf("%q: error %v, want one naming the variable", bad, err)
		} else {
			t.Logf("%q: %v", bad, err)
		}
	}
}

func TestTrustedProxies(t *testing.T) {
	env := func(v string) func(string) string {
		return func(k string) string {
			if k == "LIFT_TRUSTED_PROXIES" {
				return v
			}
			return ""
		}
	}
	for v, want := range map[string]string{
		"":                               "[]",
		"none":                           "[]",
		"10.0.0.0/8":                     "[10.0.0.0/8]",
		" 10.0.0.0/8 , 192.168.1.7,::1 ": "[10.0.0.0/8 192.168.1.7/32 ::1/128]",
		"2001:db8::/32,203.0.113.10":     "[2001:db8::/32 203.0.113.10/32]",
	} {
		c, err := config.Load(env(v))
		if err != nil {
			t.Errorf("LIFT_TRUSTED_PROXIES=%q: %v", v, err)
			continue
		}
		if got := fmt.Sprint(c.TrustedProxies); got != want {
			t.Errorf("LIFT_TRUSTED_PROXIES=%q: %s, want %s", v, got, want)
		}
	}
	for _, bad := range []string{"10.0.0.0/33", "10.1.2.3/8", "proxy.local", "10.0.0", "10.0.0.0/8,x"} {
		if _, err := config.Load(env(bad)); err == nil || !strings.Contains(err.Error(), "LIFT_TRUSTED_PROXIES") {
			t.Errorf("LIFT_TRUSTED_PROXIES=%q: error %v, want one naming the variable", bad, err)
		}
	}
}

func TestClickHouseCluster(t *testing.T) {
	env := func(kv map[string]string) func(string) string { return func(k string) string { return kv[k] } }
	c, err := config.Load(env(nil))
	if err != nil || c.ClickHouseAddr != "127.0.0.1:9000" || c.ClickHouseCluster != "" {
		t.Fatalf("defaults: addr %q cluster %q, %v", c.ClickHouseAddr, c.ClickHouseCluster, err)
	}
	c, err = config.Load(env(map[string]string{
		"LIFT_CLICKHOUSE_ADDR":    "ch1:9000, ch2:9000,[::1]:9000",
		"LIFT_CLICKHOUSE_CLUSTER": "lift_2x2",
	}))
	if err != nil || c.ClickHouseAddr != "ch1:9000, ch2:9000,[::1]:9000" || c.ClickHouseCluster != "lift_2x2" {
		t.Errorf("cluster: addr %q cluster %q, %v", c.ClickHouseAddr, c.ClickHouseCluster, err)
	}
	for _, bad := range []map[string]string{
		{"LIFT_CLICKHOUSE_ADDR": "ch1"},
		{"LIFT_CLICKHOUSE_ADDR": "ch1:9000,ch2"},
		{"LIFT_CLICKHOUSE_ADDR": " , "},
		{"LIFT_CLICKHOUSE_ADDR": "ch1:0"},
		{"LIFT_CLICKHOUSE_CLUSTER": "lift-2x2"},
		{"LIFT_CLICKHOUSE_CLUSTER": "lift`; DROP"},
	} {
		if _, err := config.Load(env(bad)); err == nil || !strings.Contains(err.Error(), "LIFT_CLICKHOUSE_") {
			t.Errorf("%v: error %v, want one naming the variable", bad, err)
		}
	}
}
