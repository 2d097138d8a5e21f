package dashboard

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/liftlab/lift/experiments"
)

// deletable describes, per kind, where its pages live and what deleting it means.
var deletable = map[experiments.Kind]struct{ noun, section, list, explain string }{
	experiments.KindExperiment: {"experiment", "experiments", "/experiments", "Decisions stop including it within a second and its configuration is gone; the audit log keeps the last version."},
	experiments.KindFlag:       {"flag", "flags", "/flags", "Clients asking for it get nothing back within a second; the audit log keeps the last version."},
	experiments.KindSegment:    {"segment", "segments", "/segments", "lift refuses while an experiment or flag rule still uses it; the audit log keeps the last version."},
	experiments.KindFeature:    {"feature", "features", "/features", "Conditions that read it see no value for it within a second; the segment engine drops its state. The audit log keeps the last version."},
	experiments.KindSavedGroup: {"saved group", "saved-groups", "/saved-groups", "Conditions that test it with $inGroup stop matching anyone (and $notInGroup matches everyone) within a second; check “Used by” first. The audit log keeps the last version."},
}

// deleteConfirm asks before deleting a document of kind.
func (d *Dashboard) deleteConfirm(kind experiments.Kind) echo.HandlerFunc {
	return func(c echo.Context) error {
		key := c.Param("key")
		if _, err := d.Config.Get(c.Request().Context(), kind, key); err != nil {
			return err
		}
		k := deletable[kind]
		return render(c, http.StatusOK, confirmView(d.page(c, k.section, "Delete "+key), confirmation{
			Title: "Delete " + k.noun + " “" + key + "”?", Explain: k.explain,
			Action: k.list + "/" + key + "/delete", Button: "Delete " + k.noun, Danger: true, Cancel: k.list + "/" + key,
		}))
	}
}

// deleteDoc deletes a document; a document still referenced becomes a 409 page that
// names who uses it.
func (d *Dashboard) deleteDoc(kind experiments.Kind) echo.HandlerFunc {
	return func(c echo.Context) error {
		if err := d.Config.Delete(c.Request().Context(), actor(c), kind, c.Param("key")); err != nil {
			return err
		}
		return c.Redirect(http.StatusSeeOther, deletable[kind].list)
	}
}
