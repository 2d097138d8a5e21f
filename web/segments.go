package web

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/liftlab/lift/experiments"
	"github.com/liftlab/lift/segments"
)

// SegmentStats reports behavioural segment sizes.
type SegmentStats interface {
	Stats(ctx context.Context, segment string) (segments.MembershipStats, error)
}

// segmentStatsResponse adds, for a segment with a draft, the draft's membership as
// the segment engine computes it in preview.
type segmentStatsResponse struct {
	segments.MembershipStats
	Preview *previewStats `json:"preview,omitempty"`
}

type previewStats struct {
	Version int `json:"version"`
	segments.MembershipStats
}

// segmentStats serves GET /api/v1/segments/{key}/stats: members now, entries and exits
// over the last hour (behavioural segments; an attribute segment's membership depends
// on the attributes of each request, so it has no size), and the same for the draft
// in preview.
func (s *server) segmentStats(c echo.Context) error {
	ctx, key := c.Request().Context(), c.Param("key")
	doc, err := s.Manager.Get(ctx, experiments.KindSegment, key)
	if err != nil {
		return err
	}
	var seg experiments.Segment
	if err := json.Unmarshal(doc, &seg); err != nil {
		return err
	}
	var resp segmentStatsResponse
	if resp.MembershipStats, err = s.SegmentStats.Stats(ctx, key); err != nil {
		return err
	}
	draft := seg.Draft
	if !seg.IsPublished() {
		draft = &seg
	}
	if draft != nil && draft.Kind == "behavioral" {
		st, err := s.SegmentStats.Stats(ctx, key+segments.PreviewSuffix)
		if err != nil {
			return err
		}
		st.Segment = key
		resp.Preview = &previewStats{Version: draft.Version, MembershipStats: st}
	}
	return c.JSON(http.StatusOK, resp)
}

// publishSegment serves POST /api/v1/segments/{key}/publish: the draft becomes the
// published definition; {"version":N} republishes version N instead.
func (s *server) publishSegment(c echo.Context) error {
	body, err := readBody(c)
	if err != nil {
		return err
	}
	var req struct {
		Version int `json:"version"`
	}
	if len(bytes.TrimSpace(body)) > 0 {
		if err := json.Unmarshal(body, &req); err != nil {
			return decodeRequestError(err, nil, `{"version":2}`)
		}
		if req.Version < 0 {
			return badRequest("version", "must be a positive version number")
		}
	}
	doc, err := s.Manager.PublishSegment(c.Request().Context(), actor(c), c.Param("key"), req.Version)
	if err != nil {
		return err
	}
	return c.JSONBlob(http.StatusOK, doc)
}

// discardSegmentDraft serves DELETE /api/v1/segments/{key}/draft.
func (s *server) discardSegmentDraft(c echo.Context) error {
	doc, err := s.Manager.DiscardSegmentDraft(c.Request().Context(), actor(c), c.Param("key"))
	if err != nil {
		return err
	}
	return c.JSONBlob(http.StatusOK, doc)
}

// segmentVersions serves GET /api/v1/segments/{key}/versions: every definition kept,
// oldest first, marking the published one and the draft.
func (s *server) segmentVersions(c echo.Context) error {
	vs, err := s.Manager.SegmentVersions(c.Request().Context(), c.Param("key"))
	if err != nil {
		return err
	}
	if vs == nil {
		vs = []experiments.SegmentVersion{}
	}
	return c.JSON(http.StatusOK, map[string]any{"items": vs})
}
