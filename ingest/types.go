package ingest

import (
	"context"
	"encoding/json"
	"regexp"
	"slices"
	"time"

	"github.com/liftlab/lift/internal/derrors"
)

// EventType is one version of a custom event type: a name and the JSON Schema its
// events' properties must satisfy. Versions count from 1; a new version must not
// break consumers of the previous one (see CompatibilityError).
type EventType struct {
	Name      string          `json:"name"`
	Version   int             `json:"version"`
	Schema    json.RawMessage `json:"schema"`
	CreatedAt time.Time       `json:"created_at"`
	CreatedBy string          `json:"created_by,omitempty"`
}

// PropertiesValidator checks the properties of an event of a custom type.
type PropertiesValidator interface {
	// ValidateProperties returns an error describing the first problem, or nil.
	ValidateProperties(props json.RawMessage) error
}

// Types finds the current version of a custom event type.
type Types interface {
	Lookup(name string) (PropertiesValidator, bool)
}

// TypeStore keeps event types. Insert fails with derrors.ErrConflict if that name and version
// exist already (someone else saved a version first).
type TypeStore interface {
	LatestTypes(ctx context.Context) ([]EventType, error)
	TypeVersions(ctx context.Context, name string) ([]EventType, error)
	InsertType(ctx context.Context, t EventType) error
}

var typeName = regexp.MustCompile(`^[a-z][a-z0-9_]{0,63}$`)

// IsBuiltin reports whether name is one of lift's own event types.
func IsBuiltin(name string) bool { return builtinTypes[name] }

// BuiltinTypes lists lift's own event types, the ones the collector accepts without
// a registered schema, sorted.
func BuiltinTypes() []string {
	names := make([]string, 0, len(builtinTypes))
	for n := range builtinTypes {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// CheckTypeName returns a *derrors.ValidationError unless name can name a custom type.
func CheckTypeName(name string) error {
	v := &derrors.ValidationError{}
	switch {
	case !typeName.MatchString(name):
		v.Add("name", "must match ^[a-z][a-z0-9_]{0,63}$")
	case builtinTypes[name]:
		v.Add("name", "%q is a built-in event type", name)
	}
	return v.Err()
}
