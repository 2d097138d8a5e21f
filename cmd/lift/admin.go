package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/liftlab/lift/experiments"
	"github.com/liftlab/lift/experiments/pgstore"
	"github.com/liftlab/lift/internal/config"
	"github.com/liftlab/lift/internal/derrors"
	"github.com/liftlab/lift/migrations"
	"github.com/liftlab/lift/segments/amqprunner"
	"github.com/liftlab/lift/segments/condition"
	"github.com/liftlab/lift/web/auth"
	authstore "github.com/liftlab/lift/web/auth/pgstore"
)

// cliActor is recorded in the audit log for changes made from the command line.
const cliActor = "cli"

func migrate(ctx context.Context, getenv func(string) string, stderr io.Writer) error {
	cfg, err := config.Load(getenv)
	if err != nil {
		return err
	}
	log := newLogger(cfg, stderr)
	if err := migrations.Postgres(ctx, cfg.PostgresURL, migrations.WithLogger(log)); err != nil {
		return fmt.Errorf("migrate postgres: %w", err)
	}
	if err := migrations.ClickHouse(ctx, cfg.ClickHouseAddr, cfg.ClickHouseDB, migrations.WithLogger(log), migrations.WithCluster(cfg.ClickHouseCluster)); err != nil {
		return fmt.Errorf("migrate clickhouse: %w", err)
	}
	// lift.segments became a stream: replace the quorum queue of earlier versions.
	// Every process declares the topology anyway, so a broker that is down now is
	// only worth a warning.
	if converted, err := amqprunner.ConvertSegmentsQueue(cfg.AMQPURL); err != nil {
		log.Warn("RabbitMQ topology not checked", "err", err)
	} else if converted {
		log.Info("lift.segments is now a stream; the segment engine rebuilds its state from ClickHouse")
	}
	log.Info("migrations applied")
	return nil
}

func connect(ctx context.Context, getenv func(string) string) (*pgxpool.Pool, error) {
	cfg, err := config.Load(getenv)
	if err != nil {
		return nil, err
	}
	pool, err := pgxpool.New(ctx, cfg.PostgresURL)
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("postgres: %w", err)
	}
	return pool, nil
}

// keysCreate prints the new secret alone on stdout, so scripts can capture it.
func keysCreate(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("keys create", flag.ContinueOnError)
	fs.SetOutput(stderr)
	kindFlag := fs.String("kind", "", "client (decide and events only) or server (management API)")
	name := fs.String("name", "", "a name to recognise the key by")
	originsFlag := fs.String("origins", "", "comma-separated browser origins the key may be used from (default: any)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	kind, err := auth.ParseKind(*kindFlag)
	if err != nil {
		return fmt.Errorf("--kind: %w", err)
	}
	var origins []string
	if *originsFlag != "" {
		if origins, err = auth.ParseOrigins(strings.Split(*originsFlag, ",")); err != nil {
			return fmt.Errorf("--origins: %w", err)
		}
	}
	pool, err := connect(ctx, getenv)
	if err != nil {
		return err
	}
	defer pool.Close()
	secret, _, err := auth.CreateKey(ctx, authstore.New(pool), *name, kind, cliActor, origins...)
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, secret)
	return nil
}

// keysRotate prints the successor's secret alone on stdout; the old key keeps
// working for --grace, time to deploy the new one.
func keysRotate(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("keys rotate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	id := fs.Int64("id", 0, "the id of the key to rotate (GET /api/v1/keys)")
	grace := fs.Duration("grace", 24*time.Hour, "how long the old key keeps working")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *id <= 0 {
		return errors.New("--id: the key's id is required")
	}
	pool, err := connect(ctx, getenv)
	if err != nil {
		return err
	}
	defer pool.Close()
	secret, _, err := auth.RotateKey(ctx, authstore.New(pool), *id, *grace, cliActor)
	if err != nil {
		return fmt.Errorf("rotate key %d: %w", *id, err)
	}
	fmt.Fprintln(stdout, secret)
	return nil
}

// usersCreate reads the password from the first line of stdin, so it never appears
// in the process list or shell history.
func usersCreate(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("users create", flag.ContinueOnError)
	fs.SetOutput(stderr)
	email := fs.String("email", "", "the user's e-mail address (their login)")
	roleFlag := fs.String("role", "", "admin, editor or viewer")
	if err := fs.Parse(args); err != nil {
		return err
	}
	role, err := auth.ParseRole(*roleFlag)
	if err != nil {
		return fmt.Errorf("--role: %w", err)
	}
	line, err := bufio.NewReader(stdin).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("reading password from stdin: %w", err)
	}
	password := strings.TrimRight(line, "\r\n")
	pool, err := connect(ctx, getenv)
	if err != nil {
		return err
	}
	defer pool.Close()
	u, err := auth.CreateUser(ctx, authstore.New(pool), *email, role, password, cliActor)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "created %s user %s\n", u.Role, u.Email)
	return nil
}

type checkInput struct {
	Condition   json.RawMessage       `json:"condition"`
	Attributes  map[string]any        `json:"attributes"`
	SavedGroups condition.SavedGroups `json:"savedGroups"`
}

// segmentsCheck answers one JSON line per input line; a bad line gets an error line
// and does not stop the rest.
func segmentsCheck(stdin io.Reader, stdout io.Writer) error {
	sc := bufio.NewScanner(stdin)
	sc.Buffer(make([]byte, 64*1024), 16<<20)
	enc := json.NewEncoder(stdout)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		if err := enc.Encode(checkLine([]byte(line))); err != nil {
			return err
		}
	}
	return sc.Err()
}

func checkLine(line []byte) map[string]any {
	var in checkInput
	if err := json.Unmarshal(line, &in); err != nil {
		return map[string]any{"error": "invalid input line: " + err.Error()}
	}
	if len(in.Condition) == 0 {
		return map[string]any{"error": "condition: is required"}
	}
	cond, err := condition.ParseConditionJSON(in.Condition)
	if err != nil {
		return map[string]any{"error": err.Error()}
	}
	return map[string]any{"match": cond.Match(in.Attributes, in.SavedGroups)}
}

// demoSeed creates the demo's retail scenario; documents that exist are left alone,
// so it can run on every `make run`. With --keys FILE it also makes sure FILE holds a
// working client and server key for the demo shop and its background simulation
// (LIFT_DEMO_CLIENT_KEY=..., LIFT_DEMO_SERVER_KEY=...), creating new ones when FILE
// is missing or its keys were revoked or belong to another database.
func demoSeed(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("demo seed", flag.ContinueOnError)
	fs.SetOutput(stderr)
	keysFile := fs.String("keys", "", "file to keep the demo's client and server keys in (shell variable assignments)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	pool, err := connect(ctx, getenv)
	if err != nil {
		return err
	}
	defer pool.Close()
	svc := experiments.NewService(pgstore.New(pool))
	// The demo compresses time: its experiments ask for 10 minutes before a verdict
	// where a real one waits a week (experiments.DefaultMinRuntime).
	docs := []struct {
		kind experiments.Kind
		doc  string
	}{
		{experiments.KindSegment, `{"key":"us-mobile","name":"US mobile","kind":"attribute",
			"condition":{"country":"US","device":"mobile"}}`},
		{experiments.KindSavedGroup, `{"key":"beta-testers","name":"Beta testers","values":["u1","u2","u3"]}`},
		{experiments.KindExperiment, `{"key":"hero-banner","name":"Hero banner","type":"ab","status":"running",
			"variants":[{"key":"control","weight":0.5,"value":{"img":"hero-a.png"}},
			            {"key":"bold","weight":0.5,"value":{"img":"hero-b.png","headline":"Up to 50% off"}}],
			"goal":{"event":"purchase","kind":"conversion"},"analysis":{"min_runtime":"10m"}}`},
		{experiments.KindExperiment, `{"key":"checkout-button","name":"Checkout button colour","status":"running",
			"variants":[{"key":"blue","weight":0.34},{"key":"green","weight":0.33},{"key":"orange","weight":0.33}],
			"targeting":{"country":{"$in":["US","CA","GB"]}},"goal":{"event":"purchase","kind":"conversion"}}`},
		{experiments.KindFlag, `{"key":"free-shipping","name":"Free shipping banner","type":"boolean","default":false,
			"rules":[{"condition":{"id":{"$inGroup":"beta-testers"}},"value":true,"variant":"beta"},
			         {"rollout":0.2,"value":true,"variant":"on"}]}`},
		{experiments.KindFlag, `{"key":"recommendations-title","type":"string","default":"You may also like",
			"rules":[{"segment":"us-mobile","value":"Trending near you","variant":"local"}]}`},
		// The retail scenario of the demo shop (/demo) and of `lift simulate`.
		{experiments.KindSegment, `{"key":"high-intent","name":"High Intent","kind":"behavioral",
			"rule":{"event":"product_view","count_gte":3,"within":"10m"},"ttl":"30m"}`},
		{experiments.KindFlag, `{"key":"discount-offer","name":"Discount for High Intent","type":"json","default":{"percent":0},
			"rules":[{"segment":"high-intent","value":{"percent":15,"code":"INTENT15"},"variant":"discount"}]}`},
		{experiments.KindSegment, `{"key":"new","name":"New visitors","kind":"attribute","condition":{"returning":{"$ne":true}}}`},
		{experiments.KindSegment, `{"key":"returning","name":"Returning visitors","kind":"attribute","condition":{"returning":true}}`},
		{experiments.KindExperiment, `{"key":"recommendations","name":"Recommendation block","type":"bandit","status":"running",
			"variants":[{"key":"trending","value":{"title":"Trending this week"}},
			            {"key":"similar","value":{"title":"Similar to what you viewed"}},
			            {"key":"bestsellers","value":{"title":"Our bestsellers"}}],
			"goal":{"event":"click","kind":"conversion"},
			"bandit":{"update_every":"10s","per_segment":["new","returning"],"sticky":true},
			"analysis":{"min_users":100,"min_runtime":"10m"}}`},
		// Recommendations (docs/recommendations.md): products similar to what the
		// visitor viewed, and an experiment of the recommender against popularity.
		{experiments.KindFeature, `{"key":"views_10m","name":"Product views, last 10 minutes","kind":"count",
			"event":"product_view","within":"10m"}`},
		{experiments.KindRecommender, `{"key":"similar","name":"Similar products","event_types":["product_view","add_to_cart","purchase"],
			"item_property":"sku","retrain_every":"10m"}`},
		{experiments.KindExperiment, `{"key":"recs-vs-popular","name":"Recommender vs popular","type":"ab","status":"running",
			"variants":[{"key":"popular","weight":0.5,"value":{"strategy":"popular"}},
			            {"key":"similar","weight":0.5,"value":{"strategy":"similar"}}],
			"goal":{"event":"purchase","kind":"conversion"},"analysis":{"min_runtime":"10m"}}`},
	}
	for _, d := range docs {
		var key struct{ Key string }
		_ = json.Unmarshal([]byte(d.doc), &key)
		_, err := svc.Create(ctx, "demo-seed", d.kind, []byte(d.doc))
		switch {
		case errors.Is(err, derrors.ErrConflict):
			fmt.Fprintf(stdout, "exists:  %s %s\n", d.kind, key.Key)
		case err != nil:
			return fmt.Errorf("seed %s %s: %w", d.kind, key.Key, err)
		default:
			fmt.Fprintf(stdout, "created: %s %s\n", d.kind, key.Key)
		}
	}
	if *keysFile != "" {
		return demoKeys(ctx, pool, *keysFile, stdout)
	}
	return nil
}

// demoKeys keeps a client and a server key for the demo in path.
func demoKeys(ctx context.Context, pool *pgxpool.Pool, path string, stdout io.Writer) error {
	store := authstore.New(pool)
	ring := auth.NewKeyRing(store)
	if err := ring.Reload(ctx); err != nil {
		return err
	}
	kept := map[string]string{}
	if data, err := os.ReadFile(path); err == nil {
		for _, line := range strings.Split(string(data), "\n") {
			if name, secret, ok := strings.Cut(strings.TrimSpace(line), "="); ok {
				kept[name] = secret
			}
		}
	}
	valid := func(name string, kind auth.KeyKind) bool {
		k, ok := ring.Lookup(kept[name])
		return ok && k.Kind == kind
	}
	if valid("LIFT_DEMO_CLIENT_KEY", auth.ClientKey) && valid("LIFT_DEMO_SERVER_KEY", auth.ServerKey) {
		fmt.Fprintf(stdout, "exists:  demo keys in %s\n", path)
		return nil
	}
	client, _, err := auth.CreateKey(ctx, store, "demo shop", auth.ClientKey, cliActor)
	if err != nil {
		return err
	}
	server, _, err := auth.CreateKey(ctx, store, "demo simulation", auth.ServerKey, cliActor)
	if err != nil {
		return err
	}
	body := fmt.Sprintf("LIFT_DEMO_CLIENT_KEY=%s\nLIFT_DEMO_SERVER_KEY=%s\n", client, server)
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		return fmt.Errorf("write demo keys: %w", err)
	}
	fmt.Fprintf(stdout, "created: demo keys in %s\n", path)
	return nil
}
