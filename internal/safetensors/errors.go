package safetensors

import "errors"

// Sentinel errors; every error the package returns wraps one of them so that
// callers can tell a damaged file from a wrong request with errors.Is.
var (
	// ErrFormat marks a file that is not valid safetensors: truncated, a bad
	// header, offsets that overlap or leave the file, sizes that disagree.
	ErrFormat = errors.New("invalid safetensors file")
	// ErrNotFound marks a request for a tensor the file does not hold.
	ErrNotFound = errors.New("tensor not found")
	// ErrDType marks a conversion the tensor's dtype does not allow.
	ErrDType = errors.New("unsupported dtype conversion")
	// ErrClosed marks use of a File after Close.
	ErrClosed = errors.New("file closed")
)
