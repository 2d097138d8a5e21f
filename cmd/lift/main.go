// Command lift is the one binary of lift: the server in its roles and the
// administration commands. See docs/api.md, "Command line".
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdin, os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "lift:", err)
		}
		os.Exit(1)
	}
}

const usage = `usage: lift <command> [flags]

commands:
  serve [--role all|api|ingest|worker]     run the server
  migrate                                  apply Postgres and ClickHouse migrations
  keys create --kind client|server [--name NAME] [--origins https://a.example,...]
  keys rotate --id N [--grace 24h]        a new secret; the old one works for the grace period
  users create --email E --role admin|editor|viewer   (password on stdin)
  segments check                           evaluate conditions given as JSON lines on stdin
  analyze [--sequential] [--correction holm|benjamini-hochberg] [--level 0.95]
                                           analyse {"weights":[..],"variants":[..]} from stdin
  demo seed [--keys FILE]                  create the demo experiments, flags and segments
                                           (and keep demo client and server keys in FILE)
  simulate [--rate R] [--sessions N | --duration D] [--scenario FILE] [--json FILE]
                                           simulated retail traffic against a running lift; reports
                                           measured lift against the simulated truth (docs/simulate.md)
  bandit simulate --arms 0.5,0.4,... --rounds N --seeds S --policy ts|ucb1|egreedy|uniform|lift [--batch B]
                                           regret of a bandit policy, as JSON
`

// run is the whole program, parameterised on its environment so tests can run it
// in-process.
func run(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return errors.New("missing command")
	}
	cmd, rest := args[0], args[1:]
	sub := ""
	if len(rest) > 0 {
		sub = rest[0]
	}
	switch {
	case cmd == "serve":
		return serve(ctx, rest, getenv, stdout, stderr)
	case cmd == "migrate":
		return migrate(ctx, getenv, stderr)
	case cmd == "keys" && sub == "create":
		return keysCreate(ctx, rest[1:], getenv, stdout, stderr)
	case cmd == "keys" && sub == "rotate":
		return keysRotate(ctx, rest[1:], getenv, stdout, stderr)
	case cmd == "users" && sub == "create":
		return usersCreate(ctx, rest[1:], getenv, stdin, stdout, stderr)
	case cmd == "analyze":
		return analyze(rest, stdin, stdout, stderr)
	case cmd == "segments" && sub == "check":
		return segmentsCheck(stdin, stdout)
	case cmd == "demo" && sub == "seed":
		return demoSeed(ctx, rest[1:], getenv, stdout, stderr)
	case cmd == "simulate":
		return simulate(ctx, rest, getenv, stdout, stderr)
	case cmd == "bandit" && sub == "simulate":
		return banditSimulate(ctx, rest[1:], stdout, stderr)
	case cmd == "help" || cmd == "-h" || cmd == "--help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprint(stderr, usage)
	return fmt.Errorf("unknown command %q", args)
}
