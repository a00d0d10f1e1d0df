package store

import "errors"

// Sentinel errors; every error the package returns wraps one of these or an
// OS/Arrow/Badger cause, so callers can test with errors.Is.
var (
	// ErrFingerprint: the cache was made by another image tower (or another
	// preprocessing) than the one the reader expects.
	ErrFingerprint = errors.New("image-tower fingerprint mismatch")
	// ErrIncompatible: an existing cache's dim, dtype or views differ from
	// what a writer asks for.
	ErrIncompatible = errors.New("incompatible cache")
	// ErrNotCache: the directory holds no manifest.json.
	ErrNotCache = errors.New("not a litcache cache (no manifest.json)")
	// ErrCorrupt: a part, marker or manifest does not agree with itself.
	ErrCorrupt = errors.New("corrupt cache")
	// ErrDuplicateKey: the same key appears twice (in one part or two).
	ErrDuplicateKey = errors.New("duplicate key")
	// ErrNoIndex: the cache has no index/ (run `litcache cache index`).
	ErrNoIndex = errors.New("cache has no index (run `litcache cache index DIR`)")
	// ErrStaleIndex: index/ was built over another set of parts.
	ErrStaleIndex = errors.New("index is stale (run `litcache cache index DIR` again)")
	// ErrNotFound: a key is not in the cache.
	ErrNotFound = errors.New("key not found")
	// ErrMixedProducers: a writer's producer (backend, precision, JPEG
	// decoder) differs from the one that made the cache's rows.
	ErrMixedProducers = errors.New("rows of another producer (backend, precision, JPEG decoder)")
	// ErrSourceMismatch: an input shard is not the one a part of the same
	// name was made from.
	ErrSourceMismatch = errors.New("input shard differs from the one the part was made from")
	// ErrLocked: another process holds the lock (of a shard's part, or of
	// the manifest).
	ErrLocked = errors.New("locked by another process")
)
