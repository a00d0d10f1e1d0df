package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
)

// Report is gpu-report.json.
type Report struct {
	Schema      int                `json:"schema"`
	ElapsedS    float64            `json:"elapsed_s"`
	Card        *Card              `json:"card"`
	Parts       map[string]*Part   `json:"parts"`
	Tests       []*Test            `json:"tests"`
	Summary     TestSummary        `json:"test_summary"`
	Benchmarks  map[string]Metrics `json:"benchmarks"`
	Peer        map[string]any     `json:"peer"`
	Comparisons []Comparison       `json:"comparisons"`
	EndToEnd    *EndToEnd          `json:"end_to_end"`
	Training    *Training          `json:"training"`
	Notes       []string           `json:"notes,omitempty"`
}

// Card is what nvidia-smi says.
type Card struct {
	Name       string `json:"name"`
	Driver     string `json:"driver"`
	Memory     string `json:"memory"`
	ComputeCap string `json:"compute_capability"`
}

// Part is one time-boxed step of check.sh.
type Part struct {
	Status  string  `json:"status"` // ok, failed, timeout, not run
	Exit    int     `json:"exit"`
	Seconds float64 `json:"seconds"`
	CapS    int     `json:"time_box_s"`
	Reason  string  `json:"reason,omitempty"`
}

// Test is one Go test or subtest.
type Test struct {
	Package string    `json:"package"`
	Name    string    `json:"name"`
	Status  string    `json:"status"` // pass, fail, skip, incomplete
	Seconds float64   `json:"seconds"`
	MaxErr  *float64  `json:"max_rel_err,omitempty"`
	Errors  []float64 `json:"rel_errs,omitempty"`
	Detail  string    `json:"detail,omitempty"` // failure or skip message, log lines
	log     []string
}

// TestSummary counts the tests by status.
type TestSummary struct {
	Pass, Fail, Skip, Incomplete int
}

// Metrics are a benchmark's reported figures by unit (ns/op, TFLOP/s, images/s, …).
type Metrics map[string]float64

// Comparison is one of our figures against the peer's (or our own ceiling)
// measured in the same run.
type Comparison struct {
	Name      string   `json:"name"`
	Ours      *float64 `json:"ours"`
	OursWhat  string   `json:"ours_what"`
	Ref       *float64 `json:"reference"`
	RefWhat   string   `json:"reference_what"`
	Ratio     *float64 `json:"ratio"`
	Target    float64  `json:"target_ratio,omitempty"`
	MeetsGoal *bool    `json:"meets_target,omitempty"`
}

// EndToEnd is litcache extract over the synthetic shards (ViT-L/14, bf16,
// float16 cache), decoding with nvJPEG (--decode gpu) and on the CPU
// (--decode cpu), in the same run.
type EndToEnd struct {
	DecodeGPU *ExtractRun `json:"decode_gpu"`
	DecodeCPU *ExtractRun `json:"decode_cpu"`
	Target    float64     `json:"target_images_per_s"`
	// Meets: the faster of the two steady rates reaches Target.
	Meets *bool `json:"meets_target,omitempty"`
}

// ExtractRun is one extract part's summary.
type ExtractRun struct {
	Images         int      `json:"images"`
	ImagesPerSWall *float64 `json:"images_per_s_wall"`
	// ImagesPerS is the steady rate: images over the pipeline's seconds
	// (first sample read to last part committed: the tower's load, the
	// self-check and the kernels' start-up left out).
	ImagesPerS *float64 `json:"images_per_s_steady"`
	PipelineS  *float64 `json:"pipeline_s"`
	TowerS     *float64 `json:"tower_s"`
	DecodeS    *float64 `json:"decode_cpu_s"`
	InputS     *float64 `json:"gpu_input_s"`
	WallS      *float64 `json:"wall_s"`
	// CPUDecoded is how many images the nvJPEG run decoded on the CPU.
	CPUDecoded *int   `json:"cpu_decoded,omitempty"`
	Decode     string `json:"decode"` // extract's line saying how it decoded
}

// vitL14GFLOP is ViT-L/14's multiply-adds ×2 per image (BASELINES.md).
const vitL14GFLOP = 162.731511808

// comparisons pairs our benchmark figures with the peer's for the same work.
// Issue 11's training benchmarks add rows here (and a part in check.sh).
var comparisons = []struct {
	name, bench, metric, peer string
	target                    float64
}{
	{"bf16 GEMM 8192³ TFLOP/s vs PyTorch", "BenchmarkGEMMBF16", "TFLOP/s", "bf16_gemm_tflops", 0},
	{"ViT-L/14 tower images/s vs HF eager", "BenchmarkViTL14/tower", "images/s", "hf_vitl14_bf16_eager_img_per_s_bs256", 0},
	{"ViT-L/14 tower images/s vs HF torch.compile", "BenchmarkViTL14/tower", "images/s", "hf_vitl14_bf16_compiled_img_per_s_bs256", 1.24},
	{"ViT-L/14 with host pixels images/s vs HF eager", "BenchmarkViTL14/host-pixels", "images/s", "hf_vitl14_bf16_eager_img_per_s_bs256", 0},
	// issue 11: the LiT step (12×512 text tower, batch 4096, bf16) against the peer's at the same contexts
	{"LiT step samples/s at ctx 32 vs HF (bf16 autocast, fused AdamW)", "BenchmarkLiT/ctx32", "samples/s", "hf_lit_text12x512_ctx32_bs4096_samples_per_s", 2.3},
	{"LiT step samples/s at ctx 77 vs HF (bf16 autocast, fused AdamW)", "BenchmarkLiT/ctx77", "samples/s", "hf_lit_text12x512_ctx77_bs4096_samples_per_s", 5},
}

var (
	reRun     = regexp.MustCompile(`^=== (RUN|NAME|CONT)\s+(\S+)`)
	reResult  = regexp.MustCompile(`^\s*--- (PASS|FAIL|SKIP): (\S+)(?: \(([\d.]+)s\))?\s*$`) // a benchmark's has no duration
	reBenchAt = regexp.MustCompile(`^(Benchmark\S+)$`)                                       // a benchmark starting (its messages follow)
	reRelErr  = regexp.MustCompile(`relative error (NaN|[-+]?[0-9.]+(?:[eE][-+]?\d+)?)`)
	reBench   = regexp.MustCompile(`^(Benchmark\S+?)(?:-\d+)?\s+(\d+)\s+(.+)$`)
	reExtract = regexp.MustCompile(`([\d.]+) images/s; decode\+preprocess ([\d.]+) s .*tower ([\d.]+) s, writing ([\d.]+) s, wall ([\d.]+) s`)
	reSamples = regexp.MustCompile(`; (\d+) samples, (\d+) rows`)
	reInput   = regexp.MustCompile(`GPU input ([\d.]+) s`)
	rePipe    = regexp.MustCompile(`pipeline ([\d.]+) images/s \((\d+) samples in ([\d.]+) s`)
	reDecode  = regexp.MustCompile(`extract: (decode: .*)`)
	reOnCPU   = regexp.MustCompile(`extract: (\d+) of \d+ images decoded on the CPU instead of nvJPEG`)
)

// parseTests reads `go test -v` output.
func parseTests(pkg, text string, exited bool) []*Test {
	byName := map[string]*Test{}
	var order []string
	get := func(name string) *Test {
		t := byName[name]
		if t == nil {
			t = &Test{Package: pkg, Name: name, Status: "incomplete"}
			byName[name] = t
			order = append(order, name)
		}
		return t
	}
	var cur *Test
	for _, line := range strings.Split(text, "\n") {
		if m := reRun.FindStringSubmatch(line); m != nil {
			cur = get(m[2])
			continue
		}
		if m := reBenchAt.FindStringSubmatch(line); m != nil {
			cur = get(m[1])
			continue
		}
		if m := reResult.FindStringSubmatch(line); m != nil {
			t := get(m[2])
			t.Status = strings.ToLower(m[1])
			t.Seconds, _ = strconv.ParseFloat(m[3], 64)
			continue
		}
		if cur == nil || strings.TrimSpace(line) == "" || line == "PASS" || line == "FAIL" {
			continue
		}
		cur.log = append(cur.log, strings.TrimSpace(line))
		for _, m := range reRelErr.FindAllStringSubmatch(line, -1) {
			v, err := strconv.ParseFloat(m[1], 64)
			if err == nil {
				cur.Errors = append(cur.Errors, v)
			}
		}
	}
	out := make([]*Test, 0, len(order))
	for _, n := range order {
		t := byName[n]
		for _, e := range t.Errors {
			if t.MaxErr == nil || e > *t.MaxErr || math.IsNaN(e) {
				v := e
				t.MaxErr = &v
			}
		}
		if t.MaxErr != nil && math.IsNaN(*t.MaxErr) {
			t.MaxErr = nil
			t.Detail = "NaN relative error; "
		}
		if len(t.Errors) > 64 {
			t.Errors = t.Errors[:64]
		}
		if t.Status != "pass" || !exited {
			t.Detail += tail(t.log, 12)
		}
		if strings.HasPrefix(t.Name, "Benchmark") && t.Status != "fail" {
			continue // benchmarks are reported as figures; a failed one's message as a test
		}
		out = append(out, t)
	}
	return out
}

// failedTests names the failed and unfinished top-level tests with the
// first line of each one's message.
func failedTests(ts []*Test) string {
	var out []string
	for _, t := range ts {
		if strings.Contains(t.Name, "/") || t.Status == "pass" || t.Status == "skip" {
			continue
		}
		detail := t.Detail
		for _, sub := range ts { // a parent's message is in its failed subtests
			if detail == "" && strings.HasPrefix(sub.Name, t.Name+"/") && sub.Status == "fail" {
				detail = sub.Detail
			}
		}
		first := strings.SplitN(detail, "\n", 2)[0]
		out = append(out, fmt.Sprintf("%s %s: %s", t.Name, t.Status, first))
	}
	if len(out) == 0 {
		return ""
	}
	return "tests not passed: " + strings.Join(out, "; ")
}

func tail(lines []string, n int) string {
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	s := strings.Join(lines, "\n")
	if len(s) > 4000 {
		s = s[len(s)-4000:]
	}
	return s
}

// parseBenchmarks reads benchmark result lines (value unit pairs).
func parseBenchmarks(text string) map[string]Metrics {
	out := map[string]Metrics{}
	for _, line := range strings.Split(text, "\n") {
		m := reBench.FindStringSubmatch(strings.TrimSpace(line))
		if m == nil {
			continue
		}
		f := strings.Fields(m[3])
		if len(f) < 2 || len(f)%2 != 0 {
			continue
		}
		ms := Metrics{"iterations": mustFloat(m[2])}
		ok := true
		for i := 0; i < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				ok = false
				break
			}
			ms[f[i+1]] = v
		}
		if ok {
			out[m[1]] = ms
		}
	}
	return out
}

func mustFloat(s string) float64 {
	v, _ := strconv.ParseFloat(s, 64)
	return v
}

// parsePeer reads the peer's one-JSON-object-per-line output, which
// survives a time-out part way, then its baseline.json when it got that far.
func parsePeer(text string, baseline []byte) map[string]any {
	out := map[string]any{}
	for _, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if !strings.HasPrefix(line, "{") {
			continue
		}
		var kv map[string]any
		if json.Unmarshal([]byte(line), &kv) == nil {
			for k, v := range kv {
				out[k] = v
			}
		}
	}
	var all map[string]any
	if len(baseline) > 0 && json.Unmarshal(baseline, &all) == nil {
		for k, v := range all {
			out[k] = v
		}
	}
	return out
}

func peerFloat(peer map[string]any, k string) *float64 {
	if v, ok := peer[k].(float64); ok {
		return &v
	}
	return nil
}

func ptr(v float64) *float64 { return &v }

func ratio(a, b *float64) *float64 {
	if a == nil || b == nil || *b == 0 {
		return nil
	}
	return ptr(*a / *b)
}

func metric(bench map[string]Metrics, name, unit string) *float64 {
	if m, ok := bench[name]; ok {
		if v, ok := m[unit]; ok {
			return &v
		}
	}
	return nil
}

// compare builds the comparisons table, the ceiling fraction and the ablations.
func compare(bench map[string]Metrics, peer map[string]any) []Comparison {
	var out []Comparison
	for _, c := range comparisons {
		cm := Comparison{Name: c.name, Ours: metric(bench, c.bench, c.metric), OursWhat: c.bench + " " + c.metric,
			Ref: peerFloat(peer, c.peer), RefWhat: "pytorch_peer " + c.peer, Target: c.target}
		cm.Ratio = ratio(cm.Ours, cm.Ref)
		if c.target > 0 && cm.Ratio != nil {
			ok := *cm.Ratio >= c.target
			cm.MeetsGoal = &ok
		}
		out = append(out, cm)
	}
	// the tower against the GEMM ceiling measured in this run (ours, then the peer's)
	tower := metric(bench, "BenchmarkViTL14/tower", "images/s")
	for _, ceil := range []struct {
		what string
		v    *float64
	}{{"BenchmarkGEMMBF16 TFLOP/s", metric(bench, "BenchmarkGEMMBF16", "TFLOP/s")}, {"pytorch_peer bf16_gemm_tflops", peerFloat(peer, "bf16_gemm_tflops")}} {
		var ceilIPS *float64
		if ceil.v != nil {
			ceilIPS = ptr(*ceil.v * 1e3 / vitL14GFLOP)
		}
		cm := Comparison{Name: "ViT-L/14 tower images/s vs the GEMM ceiling (" + ceil.what + " ÷ 162.7 GFLOP)",
			Ours: tower, OursWhat: "BenchmarkViTL14/tower images/s", Ref: ceilIPS, RefWhat: ceil.what + " × 1000 / 162.73", Target: 0.80}
		cm.Ratio = ratio(tower, ceilIPS)
		if cm.Ratio != nil {
			ok := *cm.Ratio >= 0.80
			cm.MeetsGoal = &ok
		}
		out = append(out, cm)
	}
	out = append(out, otherTowers(bench)...)
	for _, ab := range []struct{ name, ours, ref, unit string }{
		{"ViT-L/14 fused vs unfused ablation (images/s)", "BenchmarkViTL14/tower", "BenchmarkViTL14/unfused", "images/s"},
		{"attention flash vs GEMM path ablation (TFLOP/s)", "BenchmarkAttentionViTL14/flash", "BenchmarkAttentionViTL14/gemm", "TFLOP/s"},
	} {
		cm := Comparison{Name: ab.name, Ours: metric(bench, ab.ours, ab.unit), OursWhat: ab.ours + " " + ab.unit,
			Ref: metric(bench, ab.ref, ab.unit), RefWhat: ab.ref + " " + ab.unit}
		cm.Ratio = ratio(cm.Ours, cm.Ref)
		out = append(out, cm)
	}
	return out
}

// otherTowers sets DINOv2-B/14 and Swin-T (issue 18, BenchmarkTowerGPU)
// beside the GEMM ceiling of the same part: BenchmarkGEMMBF16's TFLOP/s over
// each tower's GFLOP/img, which the benchmark reports (tower.Config.FLOPs).
func otherTowers(bench map[string]Metrics) []Comparison {
	var out []Comparison
	ceil := metric(bench, "BenchmarkGEMMBF16", "TFLOP/s")
	for _, tw := range []struct{ name, bench string }{
		{"DINOv2-B/14", "BenchmarkTowerGPU/dinov2-vitb14"},
		{"Swin-T", "BenchmarkTowerGPU/swin-t"},
	} {
		ips, gflop := metric(bench, tw.bench, "images/s"), metric(bench, tw.bench, "GFLOP/img")
		var ceilIPS *float64
		if ceil != nil && gflop != nil && *gflop > 0 {
			ceilIPS = ptr(*ceil * 1e3 / *gflop)
		}
		cm := Comparison{Name: tw.name + " tower images/s (host pixels) vs the GEMM ceiling (BenchmarkGEMMBF16 TFLOP/s ÷ its GFLOP/img)",
			Ours: ips, OursWhat: tw.bench + " images/s", Ref: ceilIPS, RefWhat: "BenchmarkGEMMBF16 TFLOP/s × 1000 / " + tw.bench + " GFLOP/img"}
		cm.Ratio = ratio(ips, ceilIPS)
		out = append(out, cm)
	}
	return out
}

// parseExtract reads litcache extract's summary lines; nil when the part
// left none.
func parseExtract(text string) *ExtractRun {
	m := reExtract.FindStringSubmatch(text)
	if m == nil {
		return nil
	}
	e := &ExtractRun{ImagesPerSWall: ptr(mustFloat(m[1])), DecodeS: ptr(mustFloat(m[2])), TowerS: ptr(mustFloat(m[3])), WallS: ptr(mustFloat(m[5]))}
	if m := reSamples.FindStringSubmatch(text); m != nil {
		e.Images, _ = strconv.Atoi(m[1])
	}
	if m := reInput.FindStringSubmatch(text); m != nil {
		e.InputS = ptr(mustFloat(m[1]))
	}
	if m := rePipe.FindStringSubmatch(text); m != nil {
		e.ImagesPerS, e.PipelineS = ptr(mustFloat(m[1])), ptr(mustFloat(m[3]))
	}
	if m := reDecode.FindStringSubmatch(text); m != nil {
		e.Decode = m[1]
	}
	if m := reOnCPU.FindStringSubmatch(text); m != nil {
		n, _ := strconv.Atoi(m[1])
		e.CPUDecoded = &n
	}
	return e
}

// endToEnd is the end-to-end section and its comparisons: the GPU decode
// against the CPU decode (an ablation) and each against the tower alone
// (BenchmarkViTL14/tower, pixels already on the GPU: the rate end to end
// could at best reach), all steady rates of this run.
func endToEnd(logs map[string]string, bench map[string]Metrics) (*EndToEnd, []Comparison) {
	e := &EndToEnd{Target: 3000, DecodeGPU: parseExtract(logs["e2e_extract_gpu"]), DecodeCPU: parseExtract(logs["e2e_extract_cpu"])}
	steady := func(r *ExtractRun) *float64 {
		if r == nil {
			return nil
		}
		return r.ImagesPerS
	}
	g, c := steady(e.DecodeGPU), steady(e.DecodeCPU)
	for _, v := range []*float64{g, c} {
		if v != nil {
			ok := *v >= e.Target || (e.Meets != nil && *e.Meets)
			e.Meets = &ok
		}
	}
	tower := metric(bench, "BenchmarkViTL14/tower", "images/s")
	cmp := []Comparison{
		{Name: "end to end --decode gpu vs --decode cpu ablation (images/s, steady)", Ours: g, OursWhat: "extract --decode gpu pipeline images/s",
			Ref: c, RefWhat: "extract --decode cpu pipeline images/s"},
		{Name: "end to end --decode gpu images/s vs the tower alone", Ours: g, OursWhat: "extract --decode gpu pipeline images/s",
			Ref: tower, RefWhat: "BenchmarkViTL14/tower images/s"},
		{Name: "end to end --decode cpu images/s vs the tower alone", Ours: c, OursWhat: "extract --decode cpu pipeline images/s",
			Ref: tower, RefWhat: "BenchmarkViTL14/tower images/s"},
	}
	for i := range cmp {
		cmp[i].Ratio = ratio(cmp[i].Ours, cmp[i].Ref)
	}
	return e, cmp
}

// parts reads parts.tsv: name, exit code, milliseconds, time box.
func readParts(path string) (map[string]*Part, float64) {
	parts := map[string]*Part{}
	f, err := os.Open(path)
	if err != nil {
		return parts, 0
	}
	defer f.Close()
	var start, end float64
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fs := strings.Split(sc.Text(), "\t")
		switch {
		case len(fs) == 2 && fs[0] == "start":
			start = mustFloat(fs[1])
		case len(fs) == 2 && fs[0] == "end":
			end = mustFloat(fs[1])
		case len(fs) == 4:
			rc, _ := strconv.Atoi(fs[1])
			capS, _ := strconv.Atoi(fs[3])
			p := &Part{Exit: rc, Seconds: mustFloat(fs[2]) / 1e3, CapS: capS, Status: "ok"}
			switch {
			case rc == 124 || rc == 137:
				p.Status, p.Reason = "timeout", fmt.Sprintf("ran past its %d s time box", capS)
			case rc == 127:
				p.Status, p.Reason = "failed", "command not found"
			case rc != 0:
				p.Status = "failed"
			}
			parts[fs[0]] = p
		}
	}
	elapsed := 0.0
	if end > start && start > 0 {
		elapsed = (end - start) / 1e9
	}
	return parts, elapsed
}

// partNames are check.sh's parts in order (a part absent from parts.tsv did not run).
var partNames = []string{"card", "e2e_data", "cuda_tests", "towers_tests", "extract_tests", "benchmarks", "train_bench", "peer", "e2e_extract_gpu", "e2e_extract_cpu"}

// Build assembles the report from check.sh's work folder.
func Build(work string) *Report {
	r := &Report{Schema: 1, Benchmarks: map[string]Metrics{}, Peer: map[string]any{}}
	r.Parts, r.ElapsedS = readParts(filepath.Join(work, "parts.tsv"))
	logs := map[string]string{}
	for _, n := range partNames {
		b, err := os.ReadFile(filepath.Join(work, "logs", n+".log"))
		if err == nil {
			logs[n] = string(b)
		}
		if _, ok := r.Parts[n]; !ok {
			r.Parts[n] = &Part{Status: "not run", Exit: -1, Reason: "check.sh did not reach it"}
		}
	}
	// every failed part says why: the last lines of its log
	for n, p := range r.Parts {
		if p.Status != "ok" && logs[n] != "" {
			lines := strings.Split(strings.TrimSpace(logs[n]), "\n")
			if p.Reason != "" {
				p.Reason += "; "
			}
			p.Reason += tail(lines, 15)
		} else if p.Status != "ok" && p.Reason == "" {
			p.Reason = "no output"
		}
	}
	if p := r.Parts["card"]; p.Status == "ok" {
		f := strings.Split(strings.TrimSpace(strings.Split(logs["card"], "\n")[0]), ", ")
		c := &Card{}
		for i, v := range f {
			switch i {
			case 0:
				c.Name = v
			case 1:
				c.Driver = v
			case 2:
				c.Memory = v
			case 3:
				c.ComputeCap = v
			}
		}
		r.Card = c
	}
	for _, tp := range []struct{ part, pkg string }{{"cuda_tests", "cuda"}, {"towers_tests", "cuda/towers"}, {"extract_tests", "stages/extract"}} {
		ts := parseTests(tp.pkg, logs[tp.part], r.Parts[tp.part].Status == "ok")
		r.Tests = append(r.Tests, ts...)
		if p := r.Parts[tp.part]; p.Status != "ok" {
			if why := failedTests(ts); why != "" {
				p.Reason = why + "\n" + p.Reason
			}
		}
	}
	for _, part := range []string{"benchmarks", "train_bench"} {
		for _, t := range parseTests("cuda/towers", logs[part], true) {
			if t.Status == "fail" { // a failed benchmark's message, as a test
				r.Tests = append(r.Tests, t)
			}
		}
	}
	for _, t := range r.Tests {
		switch t.Status {
		case "pass":
			r.Summary.Pass++
		case "fail":
			r.Summary.Fail++
		case "skip":
			r.Summary.Skip++
		default:
			r.Summary.Incomplete++
		}
	}
	r.Benchmarks = parseBenchmarks(logs["benchmarks"])
	for name, m := range parseBenchmarks(logs["train_bench"]) {
		r.Benchmarks[name] = m
	}
	baseline, _ := os.ReadFile(filepath.Join(work, "baseline.json"))
	r.Peer = parsePeer(logs["peer"], baseline)
	r.Comparisons = append(compare(r.Benchmarks, r.Peer), trainComparisons(r.Benchmarks)...)
	r.Training = training(r.Tests, r.Benchmarks, r.Parts["train_bench"])
	e, cmp := endToEnd(logs, r.Benchmarks)
	r.Comparisons = append(r.Comparisons, cmp...)
	r.EndToEnd = e
	return r
}
