package store

import (
	"errors"
	"fmt"
	"sort"
	"time"
)

// How a writer's rows come to be the cache's.
//
// A cache is bound to one image tower (and dim, dtype, views) and one
// producer by its first committed part, not by the run that created the
// folder: manifest.json is written under the manifest lock together with
// that part's marker. So a run that fails before committing anything (bad
// weights, a GPU that does not start) leaves nothing that refuses a retry,
// and a manifest found with no part beside it (left by such a run of an
// older build) binds nothing and is replaced. Once a part exists, the
// manifest — or, when it was lost, the identity rebuilt from the markers,
// which carry it — decides, and another tower is refused.

// state is what a cache folder holds.
type state struct {
	m            Manifest // manifest.json, or rebuilt from the markers
	haveManifest bool     // m was read from manifest.json
	rebuilt      bool     // m was rebuilt from the markers
	markers      []Marker
}

// readState reads the manifest and the markers; a lost or unreadable
// manifest is rebuilt from the markers when there are any.
func readState(dir string) (state, error) {
	var st state
	markers, err := readMarkers(dir)
	if err != nil {
		return st, err
	}
	st.markers = markers
	m, err := ReadManifest(dir)
	switch {
	case err == nil:
		st.m, st.haveManifest = m, true
	case (errors.Is(err, ErrNotCache) || errors.Is(err, ErrCorrupt)) && len(markers) > 0:
		if st.m, err = RebuildManifest(markers); err != nil {
			return st, fmt.Errorf("store: %s: manifest.json lost and %w", dir, err)
		}
		st.rebuilt = true
	case errors.Is(err, ErrNotCache):
	default:
		return st, err
	}
	return st, nil
}

// RebuildManifest rebuilds a manifest's identity (fingerprint, model, dim,
// dtype, views, normalisation, producer) from the done/ markers, which all
// carry it; the counts are Finalize's business. Markers that disagree, or
// that were written before markers carried the identity, are an error.
func RebuildManifest(markers []Marker) (Manifest, error) {
	if len(markers) == 0 {
		return Manifest{}, fmt.Errorf("no done/ markers to rebuild it from: %w", ErrNotCache)
	}
	byTime := append([]Marker(nil), markers...)
	sort.SliceStable(byTime, func(i, j int) bool { return byTime[i].Committed < byTime[j].Committed })
	first := byTime[0]
	for _, mk := range byTime {
		if mk.Fingerprint == "" {
			return Manifest{}, fmt.Errorf("the marker of part %s does not record its image tower (written by an older build): restore manifest.json or start a new cache: %w", mk.Name, ErrCorrupt)
		}
		want := first.identity()
		if err := mk.identity().compatible(want); err != nil {
			return Manifest{}, fmt.Errorf("parts %s and %s disagree: %w", first.Name, mk.Name, err)
		}
	}
	m := first.identity()
	m.Created = first.Committed
	if err := m.Validate(); err != nil {
		return m, err
	}
	return m, nil
}

// reference is the producer a new part must match: the manifest's, or,
// when it has none (written before producers were recorded), the first
// recorded one among the markers.
func (st state) reference() Producer {
	if st.m.Producer.Known() {
		return st.m.Producer
	}
	best := ""
	var p Producer
	for _, mk := range st.markers {
		if mk.Producer.Known() && (best == "" || mk.Committed < best) {
			best, p = mk.Committed, mk.Producer
		}
	}
	return p
}

// admits says why rows made as want may not join the cache (nil when they may).
func (st state) admits(dir string, want Manifest, allowMixed bool) error {
	if len(st.markers) == 0 {
		return nil // nothing binds the cache yet
	}
	if err := st.m.compatible(want); err != nil {
		return err
	}
	if ref := st.reference(); !allowMixed && !ref.Same(want.Producer) {
		return fmt.Errorf("store: cache %s holds rows made by %s; this run's producer is %s (allow it with --allow-mixed-producers): %w",
			dir, ref, want.Producer, ErrMixedProducers)
	}
	return nil
}

// bind makes manifest.json describe the cache before a part's marker is
// written: under the manifest lock it checks that the rows may join (as
// Create did, now with whatever other workers committed since) and writes
// the manifest when there is none, it was lost, or no part binds it yet.
// The caller writes its marker and then calls the returned unlock, so that
// no other first commit can slip between the manifest and the marker.
func (c *Cache) bind() (unlock func() error, err error) {
	lk, err := lockManifest(c.dir)
	if err != nil {
		return nil, err
	}
	st, err := readState(c.dir)
	if err == nil {
		err = st.admits(c.dir, c.m, c.opt.AllowMixedProducers)
	}
	if err != nil {
		lk.Unlock()
		return nil, err
	}
	switch {
	case st.rebuilt:
		err = writeManifest(c.dir, st.m)
	case len(st.markers) == 0:
		m := c.m
		m.Created = time.Now().UTC().Format(time.RFC3339)
		m.Splits, m.Shards, m.Producers = nil, nil, nil
		m.Rows, m.Samples, m.Rejects = 0, 0, 0
		err = writeManifest(c.dir, m)
	}
	if err != nil {
		lk.Unlock()
		return nil, err
	}
	return lk.Unlock, nil
}
