package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/liftlab/lift/internal/config"
	"github.com/liftlab/lift/internal/retailsim"
	liftclient "github.com/liftlab/lift/web/client"
)

// simulate drives synthetic retail traffic against a running lift and reports what
// lift measured beside the simulated truth (docs/simulate.md).
func simulate(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("simulate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfg, _ := config.Load(getenv)
	base := fs.String("url", "http://"+cfg.HTTPAddr, "lift's base URL")
	key := fs.String("key", getenv("LIFT_CLIENT_KEY"), "client key for decisions and events (default $LIFT_CLIENT_KEY)")
	serverKey := fs.String("server-key", getenv("LIFT_SERVER_KEY"), "server key to read results for the report (default $LIFT_SERVER_KEY)")
	scenarioFile := fs.String("scenario", "", "scenario JSON file (default: the built-in retail scenario)")
	rate := fs.Float64("rate", 50, "sessions started per second (open loop)")
	sessions := fs.Int("sessions", 0, "stop after this many sessions (0: no limit)")
	duration := fs.Duration("duration", time.Minute, "stop after this long (0: no limit)")
	seed := fs.Uint64("seed", 1, "random seed: the same seed simulates the same visitors")
	prefix := fs.String("prefix", "", "user id prefix (default: sim-<random>-, so runs do not share users)")
	think := fs.Duration("think", 0, "pause between a visitor's page views")
	settle := fs.Duration("settle", 2*time.Minute, "longest wait for lift to count everything before the report")
	banditWait := fs.Duration("bandit-wait", 12*time.Second, "wait after that for a last bandit update")
	jsonOut := fs.String("json", "", "also write the report as JSON to this file")
	noReport := fs.Bool("no-report", false, "only drive traffic (no server key needed)")
	waitReady := fs.Duration("wait-ready", 0, "wait up to this long for lift's /readyz before starting")
	warmup := fs.Int("warmup", 0, "first simulate this many sessions of browsing only (no exposures), train the scenario's recommender on them and wait for its model")
	trainWait := fs.Duration("train-wait", 3*time.Minute, "longest wait for the recommender's model after the warm-up")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *key == "" {
		return errors.New("--key: a client key is required (or LIFT_CLIENT_KEY)")
	}
	if !*noReport && *serverKey == "" {
		return errors.New("--server-key: a server key is required for the report (or LIFT_SERVER_KEY, or --no-report)")
	}
	if *sessions == 0 && *duration == 0 && !*noReport {
		return errors.New("--sessions or --duration: an open-ended run has no end to report at; add --no-report")
	}
	sc := retailsim.Retail()
	if *scenarioFile != "" {
		var err error
		if sc, err = retailsim.Load(*scenarioFile); err != nil {
			return err
		}
	}
	if *prefix == "" {
		b := make([]byte, 3)
		_, _ = rand.Read(b)
		*prefix = "sim-" + hex.EncodeToString(b) + "-"
	}
	if *waitReady > 0 {
		if err := waitForReady(ctx, *base, *waitReady); err != nil {
			return err
		}
	}
	c, err := liftclient.New(liftclient.Config{BaseURL: *base, Key: *key, CacheTTL: -1, NoExposures: true,
		HTTPClient: &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 256}}})
	if err != nil {
		return err
	}
	bar := newProgressBar(stderr)
	if *warmup > 0 {
		switch {
		case sc.Recommendations == nil:
			return errors.New("--warmup: the scenario has no recommendations to train")
		case *serverKey == "":
			return errors.New("--warmup: a server key is required to train the recommender")
		}
		fmt.Fprintf(stderr, "simulate: warm-up: %d sessions of browsing for recommender %s to learn from\n", *warmup, sc.Recommendations.Recommender)
		if _, err := retailsim.Run(ctx, retailsim.Options{Scenario: sc, Client: c, Rate: *rate, Sessions: *warmup,
			Seed: *seed + 1_000_003, Prefix: *prefix + "warm-", Think: *think, BrowseOnly: true, Progress: bar.show}); err != nil {
			return err
		}
		fmt.Fprintln(stderr, "simulate: training the recommender on the warm-up…")
		// Nearly every warm-up visitor viewed something; some events may still be on
		// their way.
		if err := retailsim.Train(ctx, retailsim.API{BaseURL: *base, Key: *serverKey}, sc.Recommendations.Recommender,
			*warmup*9/10, *trainWait); err != nil {
			return err
		}
	}
	truth, err := retailsim.Run(ctx, retailsim.Options{Scenario: sc, Client: c, Rate: *rate, Sessions: *sessions,
		Duration: *duration, Seed: *seed, Prefix: *prefix, Think: *think, Progress: bar.show})
	if err != nil {
		return err
	}
	if *noReport {
		return nil
	}
	fmt.Fprintln(stderr, "simulate: waiting for lift to count every event…")
	rep, err := retailsim.Measure(context.WithoutCancel(ctx), retailsim.API{BaseURL: *base, Key: *serverKey}, sc, truth, *settle, *banditWait)
	if err != nil {
		return err
	}
	if err := rep.Text(stdout); err != nil {
		return err
	}
	if *jsonOut != "" {
		data, err := json.MarshalIndent(rep, "", "  ")
		if err != nil {
			return err
		}
		return os.WriteFile(*jsonOut, append(data, '\n'), 0o644)
	}
	return nil
}

func waitForReady(ctx context.Context, base string, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		resp, err := http.Get(strings.TrimRight(base, "/") + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("lift at %s not ready within %v", base, limit)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// progressBar draws the run's progress on one terminal line, or, when stderr is not a
// terminal (a log file), a line every 10 seconds.
type progressBar struct {
	w        io.Writer
	terminal bool
	last     time.Time
}

func newProgressBar(w io.Writer) *progressBar {
	f, ok := w.(*os.File)
	terminal := false
	if ok {
		if st, err := f.Stat(); err == nil {
			terminal = st.Mode()&os.ModeCharDevice != 0
		}
	}
	return &progressBar{w: w, terminal: terminal}
}

func (b *progressBar) show(p retailsim.Progress) {
	if !b.terminal && !p.Finished && time.Since(b.last) < 10*time.Second {
		return
	}
	b.last = time.Now()
	rate := float64(p.Done) / max(p.Elapsed.Seconds(), 1e-9)
	count := fmt.Sprintf("%d sessions", p.Done)
	if p.Total > 0 {
		const width = 30
		filled := int(width * p.Done / p.Total)
		count = fmt.Sprintf("[%s%s] %3d%%  %d/%d sessions", strings.Repeat("=", filled), strings.Repeat(" ", width-filled),
			100*p.Done/p.Total, p.Done, p.Total)
	}
	line := fmt.Sprintf("%s  %.0f/s  in flight %d  lag %.1fs  errors %d", count, rate, p.InFlight, p.Lag.Seconds(), p.Errors)
	if p.LastErr != "" && p.Errors > 0 {
		line += "  last error: " + truncateText(p.LastErr, 80)
	}
	if b.terminal {
		fmt.Fprintf(b.w, "\r\033[Ksimulate: %s", line)
		if p.Finished {
			fmt.Fprintln(b.w)
		}
		return
	}
	fmt.Fprintf(b.w, "simulate: %s\n", line)
}

func truncateText(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
