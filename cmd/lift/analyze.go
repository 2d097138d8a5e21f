package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"

	"github.com/liftlab/lift/experiments/stats"
)

// analyze runs the statistics engine on one JSON document from stdin (docs/api.md,
// `lift analyze`) and prints the analysis as JSON: a conversion metric
// ({"key","users","conversions"} per variant) or a value metric ({"key","users",
// "sum","sum_squares"}), optionally with CUPED's pre-exposure sums.
func analyze(args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("analyze", flag.ContinueOnError)
	fs.SetOutput(stderr)
	o := stats.DefaultOptions
	fs.Float64Var(&o.Level, "level", o.Level, "confidence level of the intervals")
	correction := fs.String("correction", string(o.Correction), "none, holm or benjamini-hochberg (across treatments)")
	fs.BoolVar(&o.Sequential, "sequential", false, "always-valid intervals and p-values, safe to look at any time")
	if err := fs.Parse(args); err != nil {
		return err
	}
	switch c := stats.Correction(*correction); c {
	case stats.NoCorrection, stats.Holm, stats.BenjaminiHochberg:
		o.Correction = c
	default:
		return fmt.Errorf("--correction: want none, holm or benjamini-hochberg, got %q", *correction)
	}
	if !(o.Level > 0 && o.Level < 1) {
		return fmt.Errorf("--level: want a number between 0 and 1, got %v", o.Level)
	}
	var in stats.Input
	dec := json.NewDecoder(stdin)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&in); err != nil {
		return fmt.Errorf("reading the input document: %w", err)
	}
	res, err := stats.Analyze(in, o)
	if err != nil {
		return err
	}
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(res)
}
