package sweep

import (
	"strings"

	"github.com/litcache/litcache/internal/report"
)

// lineGroup is a member's place in the overlay plots: a colour for its
// value on the first varying axis, a line style for its values on the others.
type lineGroup struct{ color, style int }

func (g lineGroup) series(name string, x, y []float64) report.Series {
	return report.Series{Name: name, X: x, Y: y, Color: g.color, Style: g.style}
}

// groupSet is every member's lineGroup, and the caption that says which
// axis the colours and the styles stand for.
type groupSet struct {
	groups  []lineGroup
	caption string
}

func (gs groupSet) grouped() bool { return gs.caption != "" }

// lineGroups groups the plots' lines by axis: with two or more varying
// axes, lines share a colour when they share the first axis's value (the
// image tower in a tower ablation) and a style when they share the other
// axes' values, so that "which tower" and "which recipe" read off the plot
// at once. With one varying axis every line has its own colour.
func lineGroups(members []Member) groupSet {
	gs := groupSet{groups: make([]lineGroup, len(members))}
	if len(members) == 0 || len(members[0].Settings) < 2 {
		return gs
	}
	axes := members[0].Settings
	// Each value's index on its axis, in order of first appearance.
	index := make([]map[string]int, len(axes))
	for a := range index {
		index[a] = map[string]int{}
	}
	styles := map[string]int{}
	for i, m := range members {
		var rest []string
		for a, st := range m.Settings {
			if _, ok := index[a][st.Value]; !ok {
				index[a][st.Value] = len(index[a])
			}
			if a > 0 {
				rest = append(rest, st.Value)
			}
		}
		key := strings.Join(rest, "\x00")
		if _, ok := styles[key]; !ok {
			styles[key] = len(styles)
		}
		gs.groups[i] = lineGroup{color: index[0][m.Settings[0].Value], style: styles[key]}
	}
	var others []string
	for _, st := range axes[1:] {
		others = append(others, AxisTitle(st.Axis))
	}
	gs.caption = " — colour: " + AxisTitle(axes[0].Axis) + ", line: " + strings.Join(others, " × ")
	return gs
}

// ValuesTable lists the values of the varying path axes (cache, classes,
// text init) in full beside their short labels: the cache's fingerprint and
// model, the classes file's template. ok is false when no such axis varies.
func (s *Summary) ValuesTable() (report.Table, bool) {
	t := report.Table{Header: []string{"axis", "label", "value", "fingerprint", "model / template"}}
	if len(s.Rows) == 0 {
		return t, false
	}
	seen := map[string]bool{}
	for a := range s.Rows[0].Member.Settings { // axis by axis, values in member order
		for _, r := range s.Rows {
			m := r.Member
			if a >= len(m.Settings) {
				continue
			}
			st := m.Settings[a]
			var value, fp, what string
			switch st.Axis {
			case AxisCache:
				value, fp, what = m.Cache, shortFingerprint(m.CacheFingerprint), describeModel(m.CacheModel)
				if m.ValCache != "" && m.ValCache != m.Cache {
					value += " (val " + m.ValCache + ")"
				}
			case AxisValCache:
				value = m.ValCache
			case AxisClasses:
				value, what = m.Classes, m.ClassesTemplate
			case AxisWeights:
				value = m.Weights
			default:
				continue
			}
			key := st.Axis + "\x00" + st.Value
			if seen[key] {
				continue
			}
			seen[key] = true
			t.AddRow(AxisTitle(st.Axis), st.Value, value, fp, what)
		}
	}
	return t, len(t.Rows) > 0
}

// shortFingerprint keeps a fingerprint's first 12 hex digits, enough to tell
// towers apart in a table (summary.json has it in full).
func shortFingerprint(fp string) string {
	const keep = len("sha256:") + 12
	if len(fp) > keep && strings.HasPrefix(fp, "sha256:") {
		return fp[:keep] + "…"
	}
	return fp
}
