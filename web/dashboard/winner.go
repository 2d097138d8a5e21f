package dashboard

import (
	"encoding/json"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/liftlab/lift/experiments"
)

// winnerChoice is one variant offered on the "Declare winner" page, with its chance
// of being best when the bandit's results have one.
type winnerChoice struct {
	Variant, Name, PBest string
	Checked              bool
}

// winnerForm is the page that declares a bandit's winner, or takes it back.
type winnerForm struct {
	Key, Name, Winner string
	Choices           []winnerChoice
	Errors            fieldErrors
}

// loadBandit loads the experiment of the request and refuses one that is not a bandit.
func (d *Dashboard) loadBandit(c echo.Context) (*experiments.Experiment, error) {
	e, err := d.loadExperiment(c)
	if err != nil {
		return nil, err
	}
	if e.Type != experiments.TypeBandit {
		return nil, echo.NewHTTPError(http.StatusConflict, "Only a bandit has a winner to declare; stop an A/B test and ship its best variant instead.")
	}
	return e, nil
}

func (d *Dashboard) winnerConfirm(c echo.Context) error {
	e, err := d.loadBandit(c)
	if err != nil {
		return err
	}
	f := &winnerForm{Key: e.Key, Name: e.Name}
	if e.Bandit != nil {
		f.Winner = e.Bandit.Winner
	}
	pick := c.QueryParam("variant")
	pbest := map[string]string{}
	if f.Winner == "" {
		// The results' chances are a help, not a requirement: without them the page
		// still offers every variant.
		if rs := d.experimentResults(c.Request().Context(), e, false); rs.View != nil && len(rs.View.Res.Metrics) > 0 {
			r := rs.View.Res
			if pick == "" && r.Recommendation.Decision == "ship" {
				pick = r.Recommendation.Variant
			}
			for _, v := range r.Metrics[0].Variants {
				if v.PBest != nil {
					pbest[v.Key] = percent(*v.PBest)
				}
			}
		}
	}
	for _, v := range e.Variants {
		f.Choices = append(f.Choices, winnerChoice{Variant: v.Key, Name: v.Name, PBest: pbest[v.Key], Checked: v.Key == pick})
	}
	return render(c, http.StatusOK, winnerView(d.page(c, "experiments", "Declare winner of "+e.Name), f))
}

// winnerSet records the declared winner in the experiment (an audited update, like
// the updater's own declaration): every eligible user gets it from then on and the
// weights stop changing. An empty variant takes the winner back, so the bandit learns
// again.
func (d *Dashboard) winnerSet(c echo.Context) error {
	e, err := d.loadBandit(c)
	if err != nil {
		return err
	}
	variant := c.FormValue("variant")
	if c.FormValue("op") != "resume" && variant == "" {
		f := &winnerForm{Key: e.Key, Name: e.Name, Errors: fieldErrors{{Field: "bandit.winner", Message: "choose the variant to serve"}}}
		for _, v := range e.Variants {
			f.Choices = append(f.Choices, winnerChoice{Variant: v.Key, Name: v.Name})
		}
		return render(c, http.StatusUnprocessableEntity, winnerView(d.page(c, "experiments", "Declare winner of "+e.Name), f))
	}
	if c.FormValue("op") == "resume" {
		variant = ""
	}
	if e.Bandit == nil {
		e.Bandit = &experiments.BanditConfig{}
	}
	e.Bandit.Winner = variant
	e.Status = "" // unchanged
	body, err := json.Marshal(e)
	if err != nil {
		return err
	}
	if _, err := d.Config.Replace(c.Request().Context(), actor(c), experiments.KindExperiment, e.Key, body); err != nil {
		return err
	}
	return c.Redirect(http.StatusSeeOther, "/experiments/"+e.Key)
}
