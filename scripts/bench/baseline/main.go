// Command baseline is the yardstick for the HTTP decide benchmark: a bare Echo handler
// that decodes a decide-shaped JSON body and encodes a response of the same shape and
// size as lift's, with no authentication, configuration or bucketing. lift's
// /v1/decide throughput is reported as a ratio of this one, measured in the same run.
package main

import (
	"encoding/json"
	"fmt"
	"log"
	"net/http"
	"os"

	"github.com/labstack/echo/v4"
)

type request struct {
	UserID     string         `json:"user_id"`
	Attributes map[string]any `json:"attributes"`
	Keys       []string       `json:"keys"`
}

type decision struct {
	Variant    string          `json:"variant"`
	Value      json.RawMessage `json:"value"`
	Reason     string          `json:"reason"`
	Experiment bool            `json:"experiment"`
}

func main() {
	addr := "127.0.0.1:18081"
	if len(os.Args) > 1 {
		addr = os.Args[1]
	}
	// The same 20 keys lift's benchmark configuration answers.
	decisions := map[string]decision{}
	for i := range 10 {
		decisions[fmt.Sprintf("exp-%d", i)] = decision{Variant: "treatment", Value: json.RawMessage(`{"img":"b.png"}`), Reason: "split", Experiment: true}
		decisions[fmt.Sprintf("flag-%d", i)] = decision{Variant: "on", Value: json.RawMessage(`true`), Reason: "targeting_match"}
	}
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.POST("/v1/decide", func(c echo.Context) error {
		var req request
		if err := json.NewDecoder(c.Request().Body).Decode(&req); err != nil {
			return echo.NewHTTPError(http.StatusBadRequest, err.Error())
		}
		out, err := json.Marshal(map[string]any{"user_id": req.UserID, "decisions": decisions})
		if err != nil {
			return err
		}
		return c.JSONBlob(http.StatusOK, out)
	})
	log.Fatal(e.Start(addr))
}
