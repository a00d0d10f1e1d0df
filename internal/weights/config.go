package weights

import (
	"errors"
	"fmt"
	"os"
	"strings"
)

// LoadConfig resolves a --model argument for one tower family: a built-in
// name (builtin), else a JSON file read by parse. family prefixes the errors
// ("clip: model …"); a bare word that names neither a built-in nor a file is
// answered with the list of built-ins (names).
func LoadConfig[C any](family, nameOrPath string, builtin func(string) (C, bool), names func() []string, parse func([]byte) (C, error)) (C, error) {
	if c, ok := builtin(nameOrPath); ok {
		return c, nil
	}
	var zero C
	data, err := os.ReadFile(nameOrPath)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) && !strings.ContainsAny(nameOrPath, `/\.`) {
			return zero, fmt.Errorf("%s: model %q is neither a built-in (%s) nor a file", family, nameOrPath, strings.Join(names(), ", "))
		}
		return zero, fmt.Errorf("%s: model config: %w", family, err)
	}
	c, err := parse(data)
	if err != nil {
		return zero, fmt.Errorf("%w (in %s)", err, nameOrPath)
	}
	return c, nil
}
