package gdpr

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"
)

// Runner carries erasure jobs through their steps. Run one at a time (lift elects
// one with an advisory lock); a job interrupted by a restart resumes from its saved
// progress.
type Runner struct {
	Jobs        Jobs
	Events      Events
	Segments    SegmentEngine
	Memberships Memberships
	// Webhooks is the webhook outbox; nil: there is none.
	Webhooks      Webhooks
	Configuration Configuration
	// Subjects names erased ids in the audit entries of the configuration step.
	Subjects *Subjects
	Log      *slog.Logger
	// Poll is how often open jobs are advanced, which is also how often started
	// mutations are checked (default 1 s).
	Poll time.Duration
	// FollowGrace is how long ended memberships stay before they are deleted, so
	// every decision process following them sees the end (default 3 s: they poll
	// every second besides LISTEN/NOTIFY).
	FollowGrace time.Duration
	// MaxRounds bounds the ClickHouse passes over rows that arrived during the
	// previous one (default 3).
	MaxRounds int
	Now       func() time.Time
}

func (r *Runner) defaults() {
	if r.Poll <= 0 {
		r.Poll = time.Second
	}
	if r.FollowGrace <= 0 {
		r.FollowGrace = 3 * time.Second
	}
	if r.MaxRounds <= 0 {
		r.MaxRounds = 3
	}
	if r.Now == nil {
		r.Now = time.Now
	}
}

// Run advances open jobs every Poll until ctx ends.
func (r *Runner) Run(ctx context.Context) {
	r.defaults()
	for {
		if err := r.RunOnce(ctx); err != nil && ctx.Err() == nil {
			r.Log.Warn("erasure jobs: cannot read open jobs", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(r.Poll):
		}
	}
}

// RunOnce advances every open job as far as it can go without waiting.
func (r *Runner) RunOnce(ctx context.Context) error {
	r.defaults()
	jobs, err := r.Jobs.Open(ctx)
	if err != nil {
		return err
	}
	for _, j := range jobs {
		if ctx.Err() != nil {
			return nil
		}
		r.advance(ctx, j)
	}
	return nil
}

// advance runs the job's steps in order until one has to wait or fails, then saves
// the progress (or finishes the job).
func (r *Runner) advance(ctx context.Context, j Job) {
	if j.Status == StatusPending {
		now := r.Now().UTC()
		j.Status, j.StartedAt = StatusRunning, &now
		r.Log.Info("erasure job started", "job", j.ID)
	}
	var err error
	for _, name := range Steps {
		st := j.step(name)
		if st.Done {
			continue
		}
		if st.Started == nil {
			now := r.Now().UTC()
			st.Started = &now
		}
		var done bool
		done, err = r.run(ctx, &j, st)
		if err != nil {
			err = fmt.Errorf("%s: %w", name, err)
			break
		}
		if !done {
			break
		}
		st.Done = true
	}
	if err != nil {
		j.Error = err.Error()
		if ctx.Err() == nil {
			r.Log.Warn("erasure job step failed; retrying", "job", j.ID, "err", err)
		}
	} else {
		j.Error = ""
	}
	finished := true
	for _, st := range j.Steps {
		finished = finished && st.Done
	}
	saveCtx := context.WithoutCancel(ctx) // keep what was done before a shutdown
	if finished {
		now := r.Now().UTC()
		j.Status, j.FinishedAt = StatusDone, &now
		if err := r.Jobs.Finish(saveCtx, j); err != nil {
			r.Log.Warn("erasure job: cannot record completion", "job", j.ID, "err", err)
			return
		}
		r.Log.Info("erasure job done", "job", j.ID)
		return
	}
	if err := r.Jobs.Save(saveCtx, j); err != nil {
		r.Log.Warn("erasure job: cannot save progress", "job", j.ID, "err", err)
	}
}

// run takes the next action of one step and reports whether the step is done.
func (r *Runner) run(ctx context.Context, j *Job, st *Step) (bool, error) {
	switch st.Name {
	case StepResolve:
		// The request resolved the links already; links trusted sources made
		// since then join, the others are counted (their ids are not kept).
		links, err := r.Events.LinkedIDs(ctx, j.UserIDs)
		if err != nil {
			return false, err
		}
		notFollowed := 0
		for _, l := range links {
			switch {
			case slices.Contains(j.UserIDs, l.ID):
			case l.Trusted():
				j.UserIDs = append(j.UserIDs, l.ID)
			default:
				notFollowed++
			}
		}
		st.Detail = fmt.Sprintf("%d ids (as given, pseudonym, linked by server keys or backends, %d confirmed by the operator)",
			len(j.UserIDs), len(j.ConfirmedLinks))
		if notFollowed > 0 {
			st.Detail += fmt.Sprintf("; %d linked ids not followed (linked with a client key, or before lift recorded sources): "+
				"erase them on their own if they are the user's", notFollowed)
		}
		return true, nil
	case StepSegmentEngine:
		if st.Detail == "" {
			if err := r.Segments.RequestForget(ctx, j.ID, j.UserIDs); err != nil {
				return false, err
			}
			st.Detail = "waiting for every shard's next checkpoint"
			return false, r.Jobs.Save(ctx, *j)
		}
		ok, err := r.Segments.Forgotten(ctx, j.ID, j.UserIDs)
		if ok {
			st.Detail = "state forgotten; checkpoints saved without it"
		}
		return ok, err
	case StepMemberships:
		return r.memberships(ctx, j, st)
	case StepClickHouse:
		return r.clickhouse(ctx, j, st)
	case StepWebhooks:
		if r.Webhooks == nil {
			st.Detail = "no webhook outbox"
			return true, nil
		}
		pending, dead, err := r.Webhooks.ForgetDeliveries(ctx, j.UserIDs)
		if err != nil {
			return false, err
		}
		st.Detail = fmt.Sprintf("%d undelivered segment changes and %d dead letters deleted", pending, dead)
		return true, nil
	case StepConfiguration:
		subjects, err := r.Subjects.All(ctx, j.UserIDs)
		if err != nil {
			return false, err
		}
		changed, err := r.Configuration.ForgetInSavedGroups(ctx, "erasure:"+j.ID, subjects)
		if err != nil {
			return false, err
		}
		mentions, err := r.Configuration.Mentions(ctx, j.UserIDs)
		if err != nil {
			return false, err
		}
		st.Detail = fmt.Sprintf("removed from saved groups: %s", listOrNone(changed))
		if len(mentions) > 0 {
			st.Detail += fmt.Sprintf("; still named in (review by hand): %s", strings.Join(mentions, ", "))
		}
		return true, nil
	}
	return false, fmt.Errorf("unknown step %q", st.Name)
}

func listOrNone(s []string) string {
	if len(s) == 0 {
		return "none"
	}
	return strings.Join(s, ", ")
}

// memberships ends the memberships first and deletes them FollowGrace later: a
// deleted row is invisible to the processes following the table, an ended one makes
// them drop the user.
func (r *Runner) memberships(ctx context.Context, j *Job, st *Step) (bool, error) {
	const ended = "memberships ended"
	if !strings.HasPrefix(st.Detail, ended) {
		n, err := r.Memberships.EndMemberships(ctx, j.UserIDs)
		if err != nil {
			return false, err
		}
		now := r.Now().UTC()
		st.Started = &now
		st.Detail = fmt.Sprintf("%s: %d; deleting them after %s", ended, n, r.FollowGrace)
		return false, r.Jobs.Save(ctx, *j)
	}
	if r.Now().Sub(*st.Started) < r.FollowGrace {
		return false, nil
	}
	n, err := r.Memberships.DeleteMemberships(ctx, j.UserIDs)
	if err != nil {
		return false, err
	}
	st.Detail = fmt.Sprintf("%d memberships deleted", n)
	return true, nil
}

// marker identifies a job's mutations in system.mutations.
func marker(j *Job, round int) string { return fmt.Sprintf("lift-erasure:%s:%d", j.ID, round) }

// clickhouse starts one mutation per table, saving each mutation's id as soon as it
// exists, waits for them, then counts what is left: rows that arrived while the
// mutations ran (events in flight) get another round. Tables created meanwhile join
// at the count.
func (r *Runner) clickhouse(ctx context.Context, j *Job, st *Step) (bool, error) {
	if st.Tables == nil {
		tables, err := r.Events.Tables(ctx)
		if err != nil {
			return false, err
		}
		st.Round = 1
		st.Tables = []TableProgress{}
		for _, t := range tables {
			st.Tables = append(st.Tables, TableProgress{Table: t})
		}
		if err := r.Jobs.Save(ctx, *j); err != nil {
			return false, err
		}
	}
	waiting := 0
	for i := range st.Tables {
		tp := &st.Tables[i]
		if tp.Done {
			continue
		}
		m := marker(j, st.Round)
		id, done, err := r.Events.FindMutation(ctx, tp.Table, m)
		if err != nil {
			return false, err
		}
		if id == "" {
			// Not started, or started just before a restart and not yet visible:
			// starting it again is harmless, starting none would not be.
			if err := r.Events.StartDelete(ctx, tp.Table, j.UserIDs, m); err != nil {
				return false, err
			}
			if id, done, err = r.Events.FindMutation(ctx, tp.Table, m); err != nil {
				return false, err
			}
		}
		tp.Mutation, tp.Done = id, done
		if err := r.Jobs.Save(ctx, *j); err != nil {
			return false, err
		}
		if !done {
			waiting++
		}
	}
	if waiting > 0 {
		st.Detail = fmt.Sprintf("round %d: %d of %d mutations running", st.Round, waiting, len(st.Tables))
		return false, nil
	}
	// Verify, over the tables as they are now.
	tables, err := r.Events.Tables(ctx)
	if err != nil {
		return false, err
	}
	known := map[string]bool{}
	for _, tp := range st.Tables {
		known[tp.Table] = true
	}
	for _, t := range tables {
		if !known[t] {
			st.Tables = append(st.Tables, TableProgress{Table: t, Done: true})
		}
	}
	left := 0
	for i := range st.Tables {
		n, err := r.Events.Count(ctx, st.Tables[i].Table, j.UserIDs)
		if err != nil {
			return false, err
		}
		st.Tables[i].Remaining = n
		if n > 0 {
			left++
		}
	}
	if left == 0 {
		st.Detail = fmt.Sprintf("%d tables, no row of the user left", len(st.Tables))
		return true, nil
	}
	if st.Round >= r.MaxRounds {
		st.Detail = fmt.Sprintf("%d tables still get rows of the user after %d rounds: they are still sending events", left, st.Round)
		return true, nil
	}
	st.Round++
	for i := range st.Tables {
		if st.Tables[i].Remaining > 0 {
			st.Tables[i].Done, st.Tables[i].Mutation = false, ""
		}
	}
	st.Detail = fmt.Sprintf("round %d: rows arrived in %d tables during round %d", st.Round, left, st.Round-1)
	return false, r.Jobs.Save(ctx, *j)
}
