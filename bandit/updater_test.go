package bandit_test

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/liftlab/lift/bandit"
)

// oneBandit is a Source of one auto-stopping bandit whose counts make b the clear
// best arm by the allocation's posteriors; with decide set it is also a
// WinnerSource answering decide.
type oneBandit struct {
	declared *[]string
}

func (oneBandit) Bandits(context.Context) ([]bandit.Spec, error) {
	return []bandit.Spec{{Experiment: "x", Variants: []string{"a", "b"}, Goal: bandit.Conversion, WinnerThreshold: 0.95, AutoStop: true}}, nil
}

func (oneBandit) Counts(context.Context, bandit.Spec) (map[string][]bandit.Period, error) {
	return map[string][]bandit.Period{"": {{Arms: []bandit.Counts{{Exposures: 5000, Conversions: 100}, {Exposures: 5000, Conversions: 300}}}}}, nil
}

func (o oneBandit) DeclareWinner(_ context.Context, _, variant string, _ float64) error {
	*o.declared = append(*o.declared, variant)
	return nil
}

type withResults struct {
	oneBandit
	winner string
}

func (w withResults) Winner(context.Context, bandit.Spec) (string, float64, error) {
	return w.winner, 0.99, nil
}

type discard struct{}

func (discard) Publish(context.Context, []bandit.Publication) error { return nil }

// TestAutoStopAsksResults: with a WinnerSource, auto-stop declares the arm it names
// and nothing while it names none, whatever the allocation's own P(best) says;
// without one, the allocation's P(best) decides as before.
func TestAutoStopAsksResults(t *testing.T) {
	for _, tt := range []struct {
		name   string
		source func(*[]string) bandit.Source
		want   []string
	}{
		{"allocation's P(best)", func(d *[]string) bandit.Source { return oneBandit{d} }, []string{"b"}},
		{"results name none yet", func(d *[]string) bandit.Source { return withResults{oneBandit{d}, ""} }, nil},
		{"results name a", func(d *[]string) bandit.Source { return withResults{oneBandit{d}, "a"} }, []string{"a"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var declared []string
			u := &bandit.Updater{Source: tt.source(&declared), Publisher: discard{}, Config: bandit.DefaultConfig(),
				Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
			if err := u.RunOnce(context.Background(), time.Now()); err != nil {
				t.Fatal(err)
			}
			if len(declared) != len(tt.want) || len(declared) > 0 && declared[0] != tt.want[0] {
				t.Errorf("declared %v, want %v", declared, tt.want)
			}
		})
	}
}
