// Package sweep runs a grid of tuning runs over one cache — the LiT-on-iNat
// warm-up ablation (warm-up 500/1000/2000 steps) and any other axis — either
// every member in turn or one member per SLURM array task, and summarises
// the members' metrics as a Markdown table and overlay plots (one line per
// member), the paper's loss and top-1/top-5 figures.
//
// Layout of the sweep folder OUT:
//
//	OUT/sweep.json            the grid: every member's name and settings
//	OUT/<member>/             each member's tune run folder (metrics.jsonl, final/ …)
//	OUT/summary.md, summary.json, *.png   written by Summarize
package sweep

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/litcache/litcache/internal/clip"
	"github.com/litcache/litcache/internal/inat"
	"github.com/litcache/litcache/stages/tune"
	"github.com/litcache/litcache/store"
)

// Grid lists the values of each swept axis; an empty axis keeps the base
// config's value. Members are the cartesian product, the last axis varying
// fastest (Cache, Classes, Weights, Warmup, LR, BatchSize, WeightDecay,
// Epochs, Schedule, Seed).
//
// Cache is the image-tower axis: one training cache per tower, and ValCache,
// when given, pairs a val cache with each position by position (one axis,
// not two). Classes is the caption-recipe axis (classes.json files, e.g. from
// `litcache caption --recipes`): captions are per class, so a new recipe
// needs no re-extraction. Weights is the text-init axis, in tune's
// vocabulary: a weights file, random:SEED, or "random" (tune's default: a
// random init from the member's seed).
type Grid struct {
	Cache       []string  `json:"cache,omitempty"`
	ValCache    []string  `json:"val_cache,omitempty"`
	Classes     []string  `json:"classes,omitempty"`
	Weights     []string  `json:"weights,omitempty"`
	Warmup      []int     `json:"warmup,omitempty"`
	LR          []float64 `json:"lr,omitempty"`
	BatchSize   []int     `json:"batch_size,omitempty"`
	WeightDecay []float64 `json:"wd,omitempty"`
	Epochs      []int     `json:"epochs,omitempty"`
	Schedule    []string  `json:"schedule,omitempty"`
	Seed        []uint64  `json:"seed,omitempty"`
}

// RandomInit is the Weights value of tune's default text init, a random
// initialisation from the member's seed (tune.RandomInit).
const RandomInit = tune.RandomInit

// Axis names: the flag each axis comes from.
const (
	AxisCache     = "cache"
	AxisValCache  = "val-cache"
	AxisClasses   = "classes"
	AxisWeights   = "weights"
	AxisWarmup    = "warmup"
	AxisLR        = "lr"
	AxisBatchSize = "batch-size"
	AxisWD        = "wd"
	AxisEpochs    = "epochs"
	AxisSchedule  = "schedule"
	AxisSeed      = "seed"
)

// Validate reports a grid that pairs or names its inputs wrongly over base.
func (g Grid) Validate(base tune.Config) error {
	caches := len(g.Cache)
	if caches == 0 && base.Cache != "" {
		caches = 1
	}
	if n := len(g.ValCache); n > 0 && n != max(caches, 1) {
		return fmt.Errorf("sweep: --val-cache has %d values for %d --cache values: give one val cache per training cache, paired by position", n, caches)
	}
	if len(g.Cache) > 1 {
		if len(g.ValCache) == 0 && base.ValCache != "" {
			return fmt.Errorf("sweep: one val cache %s for %d training caches: give one per cache (--val-cache VA,VB), paired by position", base.ValCache, len(g.Cache))
		}
		if base.ExpectFingerprint != "" {
			return fmt.Errorf("sweep: --expect-fingerprint with %d caches: each cache has its own image tower", len(g.Cache))
		}
	}
	for _, w := range g.Weights {
		if w == "none" || w == "" {
			return fmt.Errorf("sweep: --weights %q: a random init is spelled %q (from --seed) or random:SEED, as tune's --weights", w, RandomInit)
		}
		if _, _, err := clip.ParseRandomWeights(w); err != nil {
			return fmt.Errorf("sweep: --weights: %w", err)
		}
	}
	for name, vs := range map[string][]string{AxisCache: g.Cache, AxisValCache: g.ValCache, AxisClasses: g.Classes, AxisWeights: g.Weights} {
		seen := map[string]bool{}
		for _, v := range vs {
			if seen[v] {
				return fmt.Errorf("sweep: --%s lists %s twice", name, v)
			}
			seen[v] = true
		}
	}
	return nil
}

// Member is one run of the grid.
type Member struct {
	Index int    `json:"index"`
	Name  string `json:"name"` // folder name under the sweep folder, e.g. "warmup-500"
	// Settings are the member's values of the axes with more than one value,
	// in axis order; Value is the short form names and legends use (a
	// cache's folder name, a classes file's recipe folder).
	Settings []Setting `json:"settings"`
	// Axes is the member's value on every axis, keyed by flag name
	// ("cache", "classes", "warmup", …), in full (paths as given).
	Axes map[string]string `json:"axes"`

	Cache       string  `json:"cache"`
	ValCache    string  `json:"val_cache,omitempty"`
	Classes     string  `json:"classes"`
	Weights     string  `json:"weights"` // tune's --weights: FILE, random:SEED or "random"
	Warmup      int     `json:"warmup"`
	LR          float64 `json:"lr"`
	BatchSize   int     `json:"batch_size"`
	WeightDecay float64 `json:"wd"`
	Epochs      int     `json:"epochs"`
	Schedule    string  `json:"schedule"`
	Seed        uint64  `json:"seed"`

	// What the inputs are, read by Run when it writes the plan: the training
	// cache's image-tower fingerprint and model description (its manifest),
	// and the classes file's caption template (the recipe caption wrote
	// beside it, "" for a classes file without one).
	CacheFingerprint string `json:"cache_fingerprint,omitempty"`
	CacheModel       string `json:"cache_model,omitempty"`
	ClassesTemplate  string `json:"classes_template,omitempty"`
}

// Setting is one swept axis's value for a member.
type Setting struct {
	Axis  string `json:"axis"`
	Value string `json:"value"`
}

// Label is the member's legend text: "warm-up 500", "cache vitb16, warm-up 500".
func (m Member) Label() string {
	if len(m.Settings) == 0 {
		return m.Name
	}
	var parts []string
	for _, s := range m.Settings {
		parts = append(parts, AxisTitle(s.Axis)+" "+s.Value)
	}
	return strings.Join(parts, ", ")
}

// AxisTitle is an axis's name in tables and legends.
func AxisTitle(axis string) string {
	switch axis {
	case AxisWarmup:
		return "warm-up"
	case AxisBatchSize:
		return "batch"
	case AxisWeights:
		return "text init"
	}
	return axis
}

// Config is a sweep.
type Config struct {
	// Base is every member's tune config; its Out is replaced by OUT/<member>.
	Base tune.Config
	Grid Grid
	// Out is the sweep folder.
	Out string
	// Member runs only the member with this index (a SLURM array task);
	// -1 runs every member in turn and then Summarize.
	Member int
	// PruneCheckpoints removes a member's checkpoints/ once it has finished
	// (final/ and metrics.jsonl stay), bounding the disk a sweep holds.
	PruneCheckpoints bool
	// Log receives progress lines (nil: stderr); Quiet silences them and the
	// members' own output.
	Log   io.Writer
	Quiet bool
}

// DefaultConfig is the paper's warm-up ablation on tune's defaults.
func DefaultConfig() Config {
	return Config{Base: tune.DefaultConfig(), Grid: Grid{Warmup: []int{500, 1000, 2000}}, Member: -1}
}

// axis is one grid axis while members are built.
type axis struct {
	name   string
	values []string // full values (Member.Axes)
	labels []string // short values (names, legends)
	set    []func(*Member)
}

// gridAxes lists g's non-empty axes in order.
func gridAxes(g Grid) []axis {
	var axes []axis
	addStrings := func(name string, vs, labels []string, f func(*Member, int)) {
		if len(vs) == 0 {
			return
		}
		a := axis{name: name, values: vs, labels: labels}
		for i := range vs {
			a.set = append(a.set, func(m *Member) { f(m, i) })
		}
		axes = append(axes, a)
	}
	addNum := func(name string, n int, format func(int) string, f func(*Member, int)) {
		if n == 0 {
			return
		}
		a := axis{name: name}
		for i := 0; i < n; i++ {
			a.values = append(a.values, format(i))
			a.set = append(a.set, func(m *Member) { f(m, i) })
		}
		a.labels = a.values
		axes = append(axes, a)
	}
	float := func(vs []float64) func(int) string {
		return func(i int) string { return strconv.FormatFloat(vs[i], 'g', -1, 64) }
	}
	integer := func(vs []int) func(int) string { return func(i int) string { return strconv.Itoa(vs[i]) } }
	addStrings(AxisCache, g.Cache, ShortLabels(g.Cache), func(m *Member, i int) {
		m.Cache = g.Cache[i]
		if len(g.ValCache) > 0 {
			m.ValCache = g.ValCache[i]
		}
	})
	if len(g.Cache) == 0 && len(g.ValCache) == 1 {
		// No cache axis: the one val cache is every member's.
		addStrings(AxisValCache, g.ValCache, ShortLabels(g.ValCache), func(m *Member, i int) { m.ValCache = g.ValCache[i] })
	}
	addStrings(AxisClasses, g.Classes, ShortLabels(g.Classes), func(m *Member, i int) { m.Classes = g.Classes[i] })
	addStrings(AxisWeights, g.Weights, ShortLabels(g.Weights), func(m *Member, i int) { m.Weights = g.Weights[i] })
	addNum(AxisWarmup, len(g.Warmup), integer(g.Warmup), func(m *Member, i int) { m.Warmup = g.Warmup[i] })
	addNum(AxisLR, len(g.LR), float(g.LR), func(m *Member, i int) { m.LR = g.LR[i] })
	addNum(AxisBatchSize, len(g.BatchSize), integer(g.BatchSize), func(m *Member, i int) { m.BatchSize = g.BatchSize[i] })
	addNum(AxisWD, len(g.WeightDecay), float(g.WeightDecay), func(m *Member, i int) { m.WeightDecay = g.WeightDecay[i] })
	addNum(AxisEpochs, len(g.Epochs), integer(g.Epochs), func(m *Member, i int) { m.Epochs = g.Epochs[i] })
	addStrings(AxisSchedule, g.Schedule, g.Schedule, func(m *Member, i int) { m.Schedule = g.Schedule[i] })
	addNum(AxisSeed, len(g.Seed), func(i int) string { return strconv.FormatUint(g.Seed[i], 10) }, func(m *Member, i int) { m.Seed = g.Seed[i] })
	return axes
}

// Members expands the grid over base: the cartesian product of the non-empty
// axes. Names join the swept axes with more than one value ("warmup-500",
// "cache-vitb16_classes-paper"); a grid with no such axis is one member
// named "run".
func Members(base tune.Config, g Grid) []Member {
	axes := gridAxes(g)
	total := 1
	for _, a := range axes {
		total *= len(a.values)
	}
	weights := base.Weights
	if weights == "" {
		weights = RandomInit
	}
	members := make([]Member, 0, total)
	for i := 0; i < total; i++ {
		m := Member{Index: i, Cache: base.Cache, ValCache: base.ValCache, Classes: base.Classes, Weights: weights,
			Warmup: base.Warmup, LR: base.LR, BatchSize: base.BatchSize, WeightDecay: base.WeightDecay,
			Epochs: base.Epochs, Schedule: base.Schedule, Seed: base.Seed}
		var name []string
		rem := i
		for ai := len(axes) - 1; ai >= 0; ai-- { // last axis fastest
			a := axes[ai]
			j := rem % len(a.values)
			rem /= len(a.values)
			a.set[j](&m)
			if len(a.values) > 1 { // an axis of one value is a setting of every member, not a difference
				m.Settings = append([]Setting{{Axis: a.name, Value: a.labels[j]}}, m.Settings...)
				name = append([]string{a.name + "-" + safeName(a.labels[j])}, name...)
			}
		}
		m.Name = strings.Join(name, "_")
		if m.Name == "" {
			m.Name = "run"
		}
		m.Axes = m.axisValues()
		members = append(members, m)
	}
	// Folder names must differ even where safeName maps two labels to one
	// ("a:b", "a_b").
	seen := map[string]bool{}
	for i := range members {
		n := members[i].Name
		for k := 2; seen[n]; k++ {
			n = fmt.Sprintf("%s-%d", members[i].Name, k)
		}
		seen[n] = true
		members[i].Name = n
	}
	return members
}

// axisValues is the member's value on every axis, keyed by flag name.
func (m Member) axisValues() map[string]string {
	a := map[string]string{
		AxisCache: m.Cache, AxisClasses: m.Classes, AxisWeights: m.Weights,
		AxisWarmup: strconv.Itoa(m.Warmup), AxisLR: strconv.FormatFloat(m.LR, 'g', -1, 64),
		AxisBatchSize: strconv.Itoa(m.BatchSize), AxisWD: strconv.FormatFloat(m.WeightDecay, 'g', -1, 64),
		AxisEpochs: strconv.Itoa(m.Epochs), AxisSchedule: m.Schedule, AxisSeed: strconv.FormatUint(m.Seed, 10),
	}
	if m.ValCache != "" {
		a[AxisValCache] = m.ValCache
	}
	return a
}

// ShortLabels names each value of a path axis by what tells it from the
// others: the trailing path components the values share are dropped, then
// as few of the remaining ones as keep the labels apart, without a ".json"
// ending ("recipes/paper/classes.json", "recipes/auto/classes.json" →
// "paper", "auto"; "runs/cache-b16", "runs/cache-l14" → "cache-b16",
// "cache-l14").
func ShortLabels(values []string) []string {
	parts := make([][]string, len(values))
	for i, v := range values {
		p := strings.TrimSuffix(filepath.ToSlash(filepath.Clean(v)), ".json")
		parts[i] = strings.FieldsFunc(p, func(r rune) bool { return r == '/' })
		if len(parts[i]) == 0 {
			parts[i] = []string{v}
		}
	}
	// Drop the trailing components every value shares (keeping one).
	for len(values) > 1 {
		last, same := "", true
		for i, p := range parts {
			if len(p) < 2 {
				same = false
				break
			}
			if i == 0 {
				last = p[len(p)-1]
			} else if p[len(p)-1] != last {
				same = false
			}
		}
		if !same {
			break
		}
		for i := range parts {
			parts[i] = parts[i][:len(parts[i])-1]
		}
	}
	for k := 1; ; k++ {
		labels := make([]string, len(values))
		seen := map[string]bool{}
		distinct, full := true, true
		for i, p := range parts {
			from := max(0, len(p)-k)
			full = full && from == 0
			labels[i] = strings.Join(p[from:], "-")
			if seen[labels[i]] {
				distinct = false
			}
			seen[labels[i]] = true
		}
		if distinct {
			return labels
		}
		if full {
			return uniqueLabels(labels)
		}
	}
}

// uniqueLabels suffixes the second and later uses of a label with its
// position ("a-b", "a-b-2"), for values the path rules cannot tell apart
// ("a/b" and "a-b").
func uniqueLabels(labels []string) []string {
	out := make([]string, len(labels))
	seen := map[string]bool{}
	for i, l := range labels {
		for k := i + 1; seen[l]; k++ {
			l = fmt.Sprintf("%s-%d", labels[i], k)
		}
		seen[l] = true
		out[i] = l
	}
	return out
}

// safeName keeps a value usable as a folder name.
func safeName(v string) string {
	return strings.Map(func(r rune) rune {
		if r == '/' || r == '\\' || r == ' ' || r == ':' {
			return '_'
		}
		return r
	}, v)
}

// TuneConfig is base with m's settings and Out = dir/m.Name.
func (m Member) TuneConfig(base tune.Config, dir string) tune.Config {
	c := base
	c.Cache, c.ValCache, c.Classes = m.Cache, m.ValCache, m.Classes
	c.Weights = m.Weights
	if m.Weights == RandomInit {
		c.Weights = "" // tune's own default, so a one-member sweep is the plain tune run
	}
	c.Warmup, c.LR, c.BatchSize, c.WeightDecay = m.Warmup, m.LR, m.BatchSize, m.WeightDecay
	c.Epochs, c.Schedule, c.Seed = m.Epochs, m.Schedule, m.Seed
	c.Out = filepath.Join(dir, m.Name)
	return c
}

// Plan is sweep.json: the grid and its members, plus what Summarize needs
// to know without re-reading the base config.
type Plan struct {
	Grid    Grid     `json:"grid"`
	Members []Member `json:"members"`
	// Classes is the first member's classes.json (chance level = 1/classes);
	// Cache and Val its caches.
	Classes string `json:"classes"`
	Cache   string `json:"cache"`
	Val     string `json:"val_cache,omitempty"`
	// What an evaluation of a member needs to score as its per-epoch
	// zero-shot did: the val split, vocabulary, context and templates.
	ValSplit      string   `json:"val_split,omitempty"`
	Vocab         string   `json:"vocab,omitempty"`
	ContextLen    int      `json:"context,omitempty"`
	EvalTemplates []string `json:"eval_templates,omitempty"`
}

// PlanFile is the name of the plan inside the sweep folder.
const PlanFile = "sweep.json"

// ReadPlan reads OUT/sweep.json.
func ReadPlan(dir string) (Plan, error) {
	var p Plan
	b, err := os.ReadFile(filepath.Join(dir, PlanFile))
	if err != nil {
		return p, fmt.Errorf("sweep: %w (is %s a sweep folder?)", err, dir)
	}
	if err := json.Unmarshal(b, &p); err != nil {
		return p, fmt.Errorf("sweep: %s: %w", filepath.Join(dir, PlanFile), err)
	}
	if len(p.Members) == 0 {
		return p, fmt.Errorf("sweep: %s: no member", filepath.Join(dir, PlanFile))
	}
	return p, nil
}

// writePlan writes the plan, or checks it against the one already there: the
// array tasks of one sweep all write the same plan, and a different grid in
// the same folder would mix two sweeps.
func writePlan(dir string, p Plan) error {
	b, err := json.MarshalIndent(p, "", "  ")
	if err != nil {
		return fmt.Errorf("sweep: %w", err)
	}
	b = append(b, '\n')
	path := filepath.Join(dir, PlanFile)
	if old, err := os.ReadFile(path); err == nil {
		if bytes.Equal(old, b) {
			return nil
		}
		var op Plan
		if json.Unmarshal(old, &op) == nil && samePlan(op, p) {
			return nil
		}
		return fmt.Errorf("sweep: %s holds another sweep's grid; use a new --out folder", path)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("sweep: %w", err)
	}
	tmp, err := os.CreateTemp(dir, ".sweep.*.tmp")
	if err != nil {
		return fmt.Errorf("sweep: %w", err)
	}
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return fmt.Errorf("sweep: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return fmt.Errorf("sweep: %w", err)
	}
	tmp.Close()
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("sweep: %w", err)
	}
	return nil
}

func samePlan(a, b Plan) bool {
	if len(a.Members) != len(b.Members) {
		return false
	}
	for i := range a.Members {
		x, y := a.Members[i], b.Members[i]
		if x.Name != y.Name || x.Cache != y.Cache || x.ValCache != y.ValCache || x.Classes != y.Classes || x.Weights != y.Weights ||
			x.Warmup != y.Warmup || x.LR != y.LR || x.BatchSize != y.BatchSize ||
			x.WeightDecay != y.WeightDecay || x.Epochs != y.Epochs || x.Schedule != y.Schedule || x.Seed != y.Seed {
			return false
		}
	}
	return true
}

// MemberResult is one member's tune result, or its error.
type MemberResult struct {
	Member Member
	Result tune.Result
	Err    error
}

// Run runs the sweep: every member in turn (then Summarize), or only
// cfg.Member. A member whose folder already holds a finished run is not run
// again; one with checkpoints resumes from the latest. The first member
// error stops the sweep.
func Run(ctx context.Context, cfg Config) ([]MemberResult, *Summary, error) {
	if cfg.Out == "" {
		return nil, nil, fmt.Errorf("sweep: no output folder (--out)")
	}
	if err := cfg.Grid.Validate(cfg.Base); err != nil {
		return nil, nil, err
	}
	members := Members(cfg.Base, cfg.Grid)
	if cfg.Member >= len(members) {
		return nil, nil, fmt.Errorf("sweep: member %d outside the grid of %d members (0..%d)", cfg.Member, len(members), len(members)-1)
	}
	for _, m := range members {
		if err := m.TuneConfig(cfg.Base, cfg.Out).Validate(); err != nil {
			return nil, nil, fmt.Errorf("sweep: member %s: %w", m.Name, err)
		}
	}
	describe(members)
	if err := checkDims(cfg.Base, members, cfg.Out); err != nil {
		return nil, nil, err
	}
	plan := Plan{Grid: cfg.Grid, Members: members, Classes: members[0].Classes, Cache: members[0].Cache, Val: members[0].ValCache,
		ValSplit: cfg.Base.ValSplit, Vocab: cfg.Base.Vocab, ContextLen: cfg.Base.ContextLen, EvalTemplates: cfg.Base.EvalTemplates}
	if err := writePlan(cfg.Out, plan); err != nil {
		return nil, nil, err
	}
	logw := cfg.Log
	if logw == nil {
		logw = os.Stderr
	}
	if cfg.Quiet {
		logw = io.Discard
	}
	var results []MemberResult
	for _, m := range members {
		if cfg.Member >= 0 && m.Index != cfg.Member {
			continue
		}
		if err := ctx.Err(); err != nil {
			return results, nil, err
		}
		tc := m.TuneConfig(cfg.Base, cfg.Out)
		if cfg.Quiet {
			tc.Quiet = true
		}
		if tc.Log == nil {
			tc.Log = logw
		}
		if done(tc.Out) {
			fmt.Fprintf(logw, "sweep: member %d/%d %s already finished (%s)\n", m.Index+1, len(members), m.Label(), tc.Out)
			results = append(results, MemberResult{Member: m})
			continue
		}
		if latest, _ := tune.LatestCheckpoint(tc.Out); latest != "" {
			tc.Resume = true
		}
		fmt.Fprintf(logw, "sweep: member %d/%d %s → %s\n", m.Index+1, len(members), m.Label(), tc.Out)
		res, err := tune.Run(ctx, tc)
		results = append(results, MemberResult{Member: m, Result: res, Err: err})
		if err != nil {
			return results, nil, fmt.Errorf("sweep: member %s: %w", m.Name, err)
		}
		if cfg.PruneCheckpoints && done(tc.Out) {
			if err := os.RemoveAll(filepath.Join(tc.Out, "checkpoints")); err != nil {
				return results, nil, fmt.Errorf("sweep: member %s: prune checkpoints: %w", m.Name, err)
			}
		}
	}
	if cfg.Member >= 0 {
		return results, nil, nil
	}
	sum, err := SummarizeWith(cfg.Out, SummarizeOptions{Backend: cfg.Base.Backend, Log: logw})
	if err != nil {
		return results, nil, err
	}
	return results, sum, nil
}

// describe fills in what each member's inputs are: the training cache's
// fingerprint and model (its manifest) and the classes file's template (the
// recipe beside it). An input it cannot read is left undescribed: the
// member's own run reports it.
func describe(members []Member) {
	manifests := map[string]store.Manifest{}
	templates := map[string]string{}
	for i := range members {
		m := &members[i]
		mf, ok := manifests[m.Cache]
		if !ok {
			mf, _ = store.ReadManifest(m.Cache)
			manifests[m.Cache] = mf
		}
		m.CacheFingerprint, m.CacheModel = mf.Fingerprint, mf.Model
		tm, ok := templates[m.Classes]
		if !ok {
			if r, err := inat.ReadRecipe(m.Classes); err == nil {
				tm = r.Template
			}
			templates[m.Classes] = tm
		}
		m.ClassesTemplate = tm
	}
}

// checkDims refuses, before any member trains, a member whose cache the
// text model cannot meet, by tune's own rule (tune.FitTextModel): a
// random-init text tower takes each cache's dim, so towers of different
// widths (CLIP, DINOv2, Swin) compare in one sweep; a pretrained one must
// project to it (or --new-projection, --image-head).
func checkDims(base tune.Config, members []Member, dir string) error {
	mc, err := clip.LoadConfig(base.Model)
	if err != nil {
		return fmt.Errorf("sweep: --model: %w", err)
	}
	for _, m := range members {
		c := m.TuneConfig(base, dir)
		var train int
		for _, cache := range []string{c.Cache, c.ValCache} {
			if cache == "" {
				continue
			}
			mf, err := store.ReadManifest(cache)
			if err != nil {
				return fmt.Errorf("sweep: member %s: %w", m.Name, err)
			}
			if cache == c.Cache {
				train = mf.Dim
			} else if mf.Dim != train {
				return fmt.Errorf("sweep: member %s: val cache %s holds %d-d embeddings, its training cache %s %d-d", m.Name, cache, mf.Dim, c.Cache, train)
			}
		}
		if _, _, err := tune.FitTextModel(c, mc, train); err != nil {
			return fmt.Errorf("sweep: member %s (cache %s): %w", m.Name, c.Cache, err)
		}
	}
	return nil
}

// done tells whether a member's run folder holds a finished run (final/).
func done(out string) bool {
	_, err := os.Stat(filepath.Join(out, "final", "open_clip_model.safetensors"))
	return err == nil
}
