package tune

import (
	"os"
	"path/filepath"
	"testing"
)

// FuzzMetrics feeds arbitrary bytes as metrics.jsonl to ReadMetrics and to
// the resume truncation (openMetrics with a step to keep): neither may
// panic, and what the truncation keeps must read back as step and epoch
// lines no later than the kept step.
func FuzzMetrics(f *testing.F) {
	f.Add([]byte(`{"kind":"step","step":0,"epoch":0,"loss":3.2,"lr":0.001,"logit_scale":2.65,"samples_per_s":100}
{"kind":"step","step":1,"epoch":0,"loss":3.1,"lr":0.001,"logit_scale":2.65}
{"kind":"epoch","epoch":0,"step":2,"loss":3.15,"top1":0.1,"top5":0.3,"val_loss":3.3}
`), 1)
	f.Add([]byte("{\"kind\":\"step\",\"step\":5}\n{\"kind\":\"epo"), 3)
	f.Add([]byte("not json\n\n{}\n[1,2]\n"), 0)
	f.Add([]byte(`{"kind":"step","step":1e400}`), 2)
	f.Add([]byte(`{"kind":"epoch","top1":"x"}`), 0)
	f.Fuzz(func(t *testing.T, data []byte, keep int) {
		dir := t.TempDir()
		path := filepath.Join(dir, "metrics.jsonl")
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		ReadMetrics(path) // an error is fine, a panic is not
		if keep < 0 {
			keep = -keep
		}
		w, err := openMetrics(path, keep%1000)
		if err != nil {
			return
		}
		w.close()
		steps, epochs, err := ReadMetrics(path)
		if err != nil {
			// Kept lines were whole JSON objects with a kind; a line that is
			// valid for the header but not the full struct (e.g. "top1":"x")
			// may still fail here, which is the reader's business to report.
			return
		}
		for _, s := range steps {
			if s.Step >= keep%1000 {
				t.Fatalf("kept step line %d, keep %d", s.Step, keep%1000)
			}
		}
		for _, e := range epochs {
			if e.Step > keep%1000 {
				t.Fatalf("kept epoch line ending at step %d, keep %d", e.Step, keep%1000)
			}
		}
	})
}

// FuzzTrainerState reads arbitrary bytes as trainer_state.json.
func FuzzTrainerState(f *testing.F) {
	f.Add([]byte(`{"step":12,"epoch":1,"steps_per_epoch":6,"seed":5,"logit_scale":2.6592,"epoch_loss_sum":0,"epoch_steps":0}`))
	f.Add([]byte(`{"step":-1}`))
	f.Add([]byte(`{"logit_scale":1e999}`))
	f.Add([]byte(``))
	f.Fuzz(func(t *testing.T, data []byte) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, stateFile), data, 0o644); err != nil {
			t.Fatal(err)
		}
		st, err := ReadTrainerState(dir)
		if err == nil && (st.Step < 0 || st.Epoch < 0) {
			t.Fatalf("accepted negative position %+v", st)
		}
	})
}
