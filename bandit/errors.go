package bandit

import (
	"fmt"

	"github.com/liftlab/lift/internal/derrors"
)

// invalid reports an invalid input: field names the configuration field or simulator
// flag at fault. The error is a *derrors.ValidationError, prefixed "bandit: ".
func invalid(field, format string, args ...any) error {
	return fmt.Errorf("bandit: %w", derrors.Invalid(field, fmt.Sprintf(format, args...)))
}
