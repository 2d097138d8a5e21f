package auth_test

import (
	"testing"

	"github.com/liftlab/lift/web/auth"
)

func TestRoleAllows(t *testing.T) {
	for _, tc := range []struct {
		have, need auth.Role
		want       bool
	}{
		{auth.Viewer, auth.Viewer, true}, {auth.Viewer, auth.Editor, false}, {auth.Editor, auth.Editor, true},
		{auth.Editor, auth.Admin, false}, {auth.Admin, auth.Editor, true}, {auth.Admin, "", false}, {"", auth.Viewer, false},
	} {
		if got := tc.have.Allows(tc.need); got != tc.want {
			t.Errorf("%q.Allows(%q) = %v, want %v", tc.have, tc.need, got, tc.want)
		}
	}
}
