package dashboard

import (
	"errors"
	"net/http"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/liftlab/lift/internal/derrors"
	"github.com/liftlab/lift/web/auth"
)

// newKey is a key just created: its secret is shown on this one page and never again.
type newKey struct {
	Secret string
	Key    auth.Key
}

// keyForm is the create form's state.
type keyForm struct {
	Name, Kind string
	Error      string
}

func (d *Dashboard) keyList(c echo.Context) error {
	return d.showKeys(c, http.StatusOK, keyForm{Kind: string(auth.ClientKey)}, nil)
}

func (d *Dashboard) showKeys(c echo.Context, status int, f keyForm, created *newKey) error {
	keys, err := d.Keys.ListKeys(c.Request().Context())
	if err != nil {
		return err
	}
	// A fresh secret must not be cached anywhere on the way back.
	c.Response().Header().Set("Cache-Control", "no-store")
	return render(c, status, keysView(d.page(c, "keys", "API keys"), keys, f, created))
}

func (d *Dashboard) keyCreate(c echo.Context) error {
	f := keyForm{Name: strings.TrimSpace(c.FormValue("name")), Kind: c.FormValue("kind")}
	kind, err := auth.ParseKind(f.Kind)
	if err != nil {
		f.Error = "Kind: " + err.Error()
		return d.showKeys(c, http.StatusUnprocessableEntity, f, nil)
	}
	secret, k, err := auth.CreateKey(c.Request().Context(), d.Keys, f.Name, kind, actor(c))
	if err != nil {
		return err
	}
	return d.showKeys(c, http.StatusCreated, keyForm{Kind: f.Kind}, &newKey{Secret: secret, Key: k})
}

func (d *Dashboard) keyRevokeConfirm(c echo.Context) error {
	id, err := strconv.ParseInt(c.Param("id"), 10, 64)
	if err != nil {
		return echo.ErrNotFound
	}
	keys, err := d.Keys.ListKeys(c.Request().Context())
	if err != nil {
		return err
	}
	for _, k := range keys {
		if k.ID == id && k.RevokedAt == nil {
			return render(c, http.StatusOK, confirmView(d.page(c, "keys", "Revoke key"), confirmation{
				Title:   "Revoke “" + k.Name + "” (" + k.Prefix + "…)?",
				Explain: "Requests with this key are refused within a second. This cannot be undone; create a new key instead.",
				Action:  "/keys/" + c.Param("id") + "/revoke", Button: "Revoke key", Danger: true, Cancel: "/keys",
			}))
		}
	}
	return echo.ErrNotFound
}

func (d *Dashboard) keyRevoke(c echo.Context) error {
	id, err := strconv.ParseInt(c.Param("id"), 10, 64)
	if err != nil {
		return echo.ErrNotFound
	}
	if err := d.Keys.RevokeKey(c.Request().Context(), id, actor(c)); err != nil {
		return err
	}
	return c.Redirect(http.StatusSeeOther, "/keys")
}

// userForm is the create-user form's state.
type userForm struct {
	Email, Role string
	Errors      fieldErrors
}

func (d *Dashboard) userList(c echo.Context) error {
	return d.showUsers(c, http.StatusOK, userForm{Role: string(auth.Editor)}, "")
}

func (d *Dashboard) showUsers(c echo.Context, status int, f userForm, created string) error {
	users, err := d.Users.ListUsers(c.Request().Context())
	if err != nil {
		return err
	}
	return render(c, status, usersView(d.page(c, "users", "Users"), users, f, created))
}

func (d *Dashboard) userCreate(c echo.Context) error {
	f := userForm{Email: strings.TrimSpace(c.FormValue("email")), Role: c.FormValue("role")}
	role, err := auth.ParseRole(f.Role)
	if err != nil {
		f.Errors = fieldErrors{{Field: "role", Message: err.Error()}}
		return d.showUsers(c, http.StatusUnprocessableEntity, f, "")
	}
	u, err := auth.CreateUser(c.Request().Context(), d.Users, f.Email, role, c.FormValue("password"), actor(c))
	if err != nil {
		field, msg, found := strings.Cut(err.Error(), ": ")
		switch {
		case errors.Is(err, derrors.ErrConflict):
			f.Errors = fieldErrors{{Field: "email", Message: "a user with this e-mail exists"}}
		case found && (field == "email" || field == "password"):
			f.Errors = fieldErrors{{Field: field, Message: msg}}
		default:
			return err
		}
		return d.showUsers(c, http.StatusUnprocessableEntity, f, "")
	}
	return d.showUsers(c, http.StatusCreated, userForm{Role: f.Role}, u.Email)
}
