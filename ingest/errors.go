package ingest

import (
	"errors"

	"github.com/liftlab/lift/internal/derrors"
)

// reasonOf is the metrics label of a rejection: a short, bounded label, the first
// invalid field.
func reasonOf(err error) string {
	var v *derrors.ValidationError
	if errors.As(err, &v) {
		if len(v.Fields) == 0 {
			return "unknown"
		}
		return v.Fields[0].Field
	}
	return "malformed"
}
