package pgstore_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"

	"github.com/liftlab/lift/experiments"
	"github.com/liftlab/lift/internal/derrors"
)

// A segment's life with drafts: every definition is kept under its number, a draft
// waits beside the published definition until published (snapshot: only published
// definitions match), earlier versions can be republished, and each step is audited.
func TestSegmentDraftsAndVersions(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t)
	svc := experiments.NewService(s)
	ctx := context.Background()
	get := func() experiments.Segment {
		t.Helper()
		doc, err := svc.Get(ctx, experiments.KindSegment, "hi")
		if err != nil {
			t.Fatal(err)
		}
		var seg experiments.Segment
		if err := json.Unmarshal(doc, &seg); err != nil {
			t.Fatal(err)
		}
		return seg
	}
	must := func(_ json.RawMessage, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	v1 := `{"key":"hi","kind":"behavioral","rule":{"event":"product_view","count_gte":3,"within":"10m"},"ttl":"5m"}`
	v2 := `{"key":"hi","kind":"behavioral","rule":{"event":"product_view","count_gte":5,"within":"10m"},"ttl":"5m","status":"draft"}`
	must(svc.Create(ctx, "ann", experiments.KindSegment, []byte(v1)))
	if seg := get(); seg.Version != 1 || seg.Status != "published" || seg.Draft != nil {
		t.Fatalf("created: %+v", seg)
	}
	// A draft leaves the published definition in place.
	must(svc.Replace(ctx, "bob", experiments.KindSegment, "hi", []byte(v2)))
	seg := get()
	if seg.Version != 1 || !jsonSame(seg.Rule, `{"event":"product_view","count_gte":3,"within":"10m"}`) {
		t.Fatalf("published definition changed by a draft: %+v", seg)
	}
	if seg.Draft == nil || seg.Draft.Version != 2 || !jsonSame(seg.Draft.Rule, `{"event":"product_view","count_gte":5,"within":"10m"}`) {
		t.Fatalf("draft %+v", seg.Draft)
	}
	// Saving the same draft again (say, with a new name) keeps its number.
	must(svc.Replace(ctx, "bob", experiments.KindSegment, "hi", []byte(`{"key":"hi","name":"High intent","kind":"behavioral",
		"rule":{"event":"product_view","count_gte":5,"within":"10m"},"ttl":"5m","status":"draft"}`)))
	if seg := get(); seg.Draft == nil || seg.Draft.Version != 2 || seg.Draft.Name != "High intent" {
		t.Fatalf("draft after renaming: %+v", seg.Draft)
	}
	// Only the published definition reaches decisions.
	cfg, err := s.LoadConfig(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Segments) != 1 || cfg.Segments[0].Draft == nil || !cfg.Segments[0].IsPublished() {
		t.Fatalf("config segments %+v", cfg.Segments)
	}

	must(svc.PublishSegment(ctx, "cat", "hi", 0))
	if seg := get(); seg.Version != 2 || seg.Draft != nil || seg.Name != "High intent" || seg.Status != "published" {
		t.Fatalf("after publishing: %+v", seg)
	}
	if _, err := svc.PublishSegment(ctx, "cat", "hi", 0); !errors.Is(err, derrors.ErrConflict) {
		t.Errorf("publishing without a draft: %v, want a conflict", err)
	}
	if _, err := svc.DiscardSegmentDraft(ctx, "cat", "hi"); !errors.Is(err, derrors.ErrConflict) {
		t.Errorf("discarding without a draft: %v, want a conflict", err)
	}
	// Roll back to version 1, then draft again and discard the draft.
	must(svc.PublishSegment(ctx, "dan", "hi", 1))
	if seg := get(); seg.Version != 1 || !jsonSame(seg.Rule, `{"event":"product_view","count_gte":3,"within":"10m"}`) {
		t.Fatalf("after the rollback: %+v", seg)
	}
	var ve *derrors.ValidationError
	if _, err := svc.PublishSegment(ctx, "dan", "hi", 9); !errors.As(err, &ve) || ve.Fields[0].Field != "version" {
		t.Errorf("publishing an unknown version: %v", err)
	}
	must(svc.Replace(ctx, "eve", experiments.KindSegment, "hi", []byte(`{"key":"hi","kind":"behavioral",
		"rule":{"event":"product_view","count_gte":4,"within":"10m"},"ttl":"5m","status":"draft"}`)))
	if seg := get(); seg.Draft == nil || seg.Draft.Version != 3 {
		t.Fatalf("a new draft after v2 gets v3: %+v", seg.Draft)
	}
	must(svc.DiscardSegmentDraft(ctx, "eve", "hi"))
	// A direct save publishes at once, as before drafts existed.
	must(svc.Replace(ctx, "fay", experiments.KindSegment, "hi", []byte(`{"key":"hi","kind":"behavioral",
		"rule":{"event":"product_view","count_gte":6,"within":"10m"},"ttl":"5m"}`)))
	if seg := get(); seg.Version != 4 || seg.Status != "published" {
		t.Fatalf("direct save: %+v", seg)
	}

	vs, err := svc.SegmentVersions(ctx, "hi")
	if err != nil {
		t.Fatal(err)
	}
	var nums []int
	for _, v := range vs {
		nums = append(nums, v.Version)
		if v.Published != (v.Version == 4) || v.Draft {
			t.Errorf("version %d: published %v, draft %v", v.Version, v.Published, v.Draft)
		}
	}
	if len(nums) != 4 || nums[0] != 1 || nums[3] != 4 || vs[1].CreatedBy != "bob" {
		t.Fatalf("versions %v (%+v)", nums, vs)
	}
	entries, err := svc.Audit(ctx, experiments.AuditQuery{Entity: experiments.KindSegment, Key: "hi"})
	if err != nil {
		t.Fatal(err)
	}
	var actions []string
	for i := len(entries) - 1; i >= 0; i-- {
		actions = append(actions, entries[i].Action)
	}
	want := []string{"create", "draft", "draft", "publish", "publish", "draft", "discard-draft", "update"}
	if len(actions) != len(want) {
		t.Fatalf("audit actions %v, want %v", actions, want)
	}
	for i := range want {
		if actions[i] != want[i] {
			t.Fatalf("audit actions %v, want %v", actions, want)
		}
	}

	// A new segment created as a draft matches nobody until published, and a deleted
	// key's numbers are not reused.
	must(svc.Create(ctx, "gus", experiments.KindSegment, []byte(`{"key":"new","kind":"behavioral","status":"draft",
		"rule":{"event":"purchase","within":"168h"}}`)))
	if _, err := svc.DiscardSegmentDraft(ctx, "gus", "new"); !errors.Is(err, derrors.ErrConflict) {
		t.Errorf("discarding a never-published segment: %v", err)
	}
	must(svc.PublishSegment(ctx, "gus", "new", 0))
	if err := svc.Delete(ctx, "gus", experiments.KindSegment, "new"); err != nil {
		t.Fatal(err)
	}
	must(svc.Create(ctx, "gus", experiments.KindSegment, []byte(`{"key":"new","kind":"attribute","condition":{}}`)))
	doc, _ := svc.Get(ctx, experiments.KindSegment, "new")
	var again experiments.Segment
	_ = json.Unmarshal(doc, &again)
	if again.Version != 2 {
		t.Errorf("re-created segment has version %d, want 2", again.Version)
	}
}

func jsonSame(got json.RawMessage, want string) bool {
	return experiments.SameDefinition(&experiments.Segment{Rule: got}, &experiments.Segment{Rule: json.RawMessage(want)})
}
