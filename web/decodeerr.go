package web

import (
	"encoding/json"
	"errors"
	"reflect"

	"github.com/liftlab/lift/internal/derrors"
)

// decodeRequestError turns encoding/json's error for a request body into a 400 that
// says what was expected: "user_id: must be a string", not what was received.
// expected names the request's fields (a field missing from it is described by its Go
// type); example is a minimal valid body, shown when the body is not an object at
// all. Anything that is not JSON is ErrMalformed.
func decodeRequestError(err error, expected map[string]string, example string) error {
	var typeErr *json.UnmarshalTypeError
	if !errors.As(err, &typeErr) {
		return derrors.ErrMalformed
	}
	if typeErr.Field == "" {
		return badRequest("(body)", "must be a JSON object such as "+example)
	}
	want, ok := expected[typeErr.Field]
	if !ok {
		want = expectedJSON(typeErr.Type)
	}
	return badRequest(typeErr.Field, "must be "+want)
}

// expectedJSON describes the JSON that decodes into t.
func expectedJSON(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "a whole number"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Map, reflect.Struct:
		return "an object"
	case reflect.Slice, reflect.Array:
		return "an array"
	}
	return "a different JSON type"
}
