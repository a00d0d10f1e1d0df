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

	"github.com/litcache/litcache/stages/tune"
)

// Grid lists the values of each swept axis; an empty axis keeps the base
// config's value. Members are the cartesian product, the last axis varying
// fastest (Warmup, LR, BatchSize, WeightDecay, Epochs, Schedule, Seed).
type Grid struct {
	Warmup      []int     `json:"warmup,omitempty"`
	LR          []float64 `json:"lr,omitempty"`
	BatchSize   []int     `json:"batch_size,omitempty"`
	WeightDecay []float64 `json:"wd,omitempty"`
	Epochs      []int     `json:"epochs,omitempty"`
	Schedule    []string  `json:"schedule,omitempty"`
	Seed        []uint64  `json:"seed,omitempty"`
}

// Member is one run of the grid.
type Member struct {
	Index int    `json:"index"`
	Name  string `json:"name"` // folder name under the sweep folder, e.g. "warmup-500"
	// Settings are the member's values of the axes with more than one value, in axis order.
	Settings []Setting `json:"settings"`

	Warmup      int     `json:"warmup"`
	LR          float64 `json:"lr"`
	BatchSize   int     `json:"batch_size"`
	WeightDecay float64 `json:"wd"`
	Epochs      int     `json:"epochs"`
	Schedule    string  `json:"schedule"`
	Seed        uint64  `json:"seed"`
}

// Setting is one swept axis's value for a member.
type Setting struct {
	Axis  string `json:"axis"`
	Value string `json:"value"`
}

// Label is the member's legend text: "warm-up 500", "warm-up 500, lr 0.001".
func (m Member) Label() string {
	if len(m.Settings) == 0 {
		return m.Name
	}
	var parts []string
	for _, s := range m.Settings {
		parts = append(parts, axisTitle(s.Axis)+" "+s.Value)
	}
	return strings.Join(parts, ", ")
}

func axisTitle(axis string) string {
	switch axis {
	case "warmup":
		return "warm-up"
	case "batch_size":
		return "batch"
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

// Members expands the grid over base: the cartesian product of the non-empty
// axes. Names join the swept axes with more than one value ("warmup-500");
// a grid with no such axis is one member named "run".
func Members(base tune.Config, g Grid) []Member {
	type axis struct {
		name   string
		values []string
		set    []func(*Member)
	}
	var axes []axis
	addInt := func(name string, vs []int, f func(*Member, int)) {
		if len(vs) == 0 {
			return
		}
		a := axis{name: name}
		for _, v := range vs {
			a.values = append(a.values, strconv.Itoa(v))
			a.set = append(a.set, func(m *Member) { f(m, v) })
		}
		axes = append(axes, a)
	}
	addFloat := func(name string, vs []float64, f func(*Member, float64)) {
		if len(vs) == 0 {
			return
		}
		a := axis{name: name}
		for _, v := range vs {
			a.values = append(a.values, strconv.FormatFloat(v, 'g', -1, 64))
			a.set = append(a.set, func(m *Member) { f(m, v) })
		}
		axes = append(axes, a)
	}
	addInt("warmup", g.Warmup, func(m *Member, v int) { m.Warmup = v })
	addFloat("lr", g.LR, func(m *Member, v float64) { m.LR = v })
	addInt("batch_size", g.BatchSize, func(m *Member, v int) { m.BatchSize = v })
	addFloat("wd", g.WeightDecay, func(m *Member, v float64) { m.WeightDecay = v })
	addInt("epochs", g.Epochs, func(m *Member, v int) { m.Epochs = v })
	if len(g.Schedule) > 0 {
		a := axis{name: "schedule"}
		for _, v := range g.Schedule {
			a.values = append(a.values, v)
			a.set = append(a.set, func(m *Member) { m.Schedule = v })
		}
		axes = append(axes, a)
	}
	if len(g.Seed) > 0 {
		a := axis{name: "seed"}
		for _, v := range g.Seed {
			a.values = append(a.values, strconv.FormatUint(v, 10))
			a.set = append(a.set, func(m *Member) { m.Seed = v })
		}
		axes = append(axes, a)
	}

	total := 1
	for _, a := range axes {
		total *= len(a.values)
	}
	members := make([]Member, 0, total)
	for i := 0; i < total; i++ {
		m := Member{Index: i, Warmup: base.Warmup, LR: base.LR, BatchSize: base.BatchSize,
			WeightDecay: base.WeightDecay, Epochs: base.Epochs, Schedule: base.Schedule, Seed: base.Seed}
		var name []string
		rem := i
		for ai := len(axes) - 1; ai >= 0; ai-- { // last axis fastest
			a := axes[ai]
			j := rem % len(a.values)
			rem /= len(a.values)
			a.set[j](&m)
			if len(a.values) > 1 { // an axis of one value is a setting of every member, not a difference
				m.Settings = append([]Setting{{Axis: a.name, Value: a.values[j]}}, m.Settings...)
				name = append([]string{a.name + "-" + safeName(a.values[j])}, name...)
			}
		}
		m.Name = strings.Join(name, "_")
		if m.Name == "" {
			m.Name = "run"
		}
		members = append(members, m)
	}
	return members
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
	// Classes is the base config's classes.json (chance level = 1/classes).
	Classes string `json:"classes"`
	Cache   string `json:"cache"`
	Val     string `json:"val_cache,omitempty"`
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
		if x.Name != y.Name || x.Warmup != y.Warmup || x.LR != y.LR || x.BatchSize != y.BatchSize ||
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
	members := Members(cfg.Base, cfg.Grid)
	if cfg.Member >= len(members) {
		return nil, nil, fmt.Errorf("sweep: member %d outside the grid of %d members (0..%d)", cfg.Member, len(members), len(members)-1)
	}
	for _, m := range members {
		if err := m.TuneConfig(cfg.Base, cfg.Out).Validate(); err != nil {
			return nil, nil, fmt.Errorf("sweep: member %s: %w", m.Name, err)
		}
	}
	plan := Plan{Grid: cfg.Grid, Members: members, Classes: cfg.Base.Classes, Cache: cfg.Base.Cache, Val: cfg.Base.ValCache}
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
	sum, err := Summarize(cfg.Out)
	if err != nil {
		return results, nil, err
	}
	return results, sum, nil
}

// done tells whether a member's run folder holds a finished run (final/).
func done(out string) bool {
	_, err := os.Stat(filepath.Join(out, "final", "open_clip_model.safetensors"))
	return err == nil
}
