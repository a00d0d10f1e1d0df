package extract

import (
	"strings"
	"testing"
)

func TestWorkerFromEnv(t *testing.T) {
	for _, tc := range []struct {
		name       string
		env        map[string]string
		worker, n  int
		ok         bool
		errMention string
	}{
		{"none", nil, 0, 1, false, ""},
		{"slurm", map[string]string{"SLURM_ARRAY_TASK_ID": "3", "SLURM_ARRAY_TASK_COUNT": "8"}, 3, 8, true, ""},
		{"slurm from 1", map[string]string{"SLURM_ARRAY_TASK_ID": "1", "SLURM_ARRAY_TASK_COUNT": "4", "SLURM_ARRAY_TASK_MIN": "1"}, 0, 4, true, ""},
		{"slurm without count", map[string]string{"SLURM_ARRAY_TASK_ID": "1"}, 0, 0, true, "SLURM_ARRAY_TASK_COUNT"},
		{"slurm garbage", map[string]string{"SLURM_ARRAY_TASK_ID": "x", "SLURM_ARRAY_TASK_COUNT": "4"}, 0, 0, true, `"x"`},
		{"indexed job", map[string]string{"JOB_COMPLETION_INDEX": "2", "LITCACHE_WORKERS": "5"}, 2, 5, true, ""},
		{"indexed job without count", map[string]string{"JOB_COMPLETION_INDEX": "2"}, 0, 0, true, "LITCACHE_WORKERS"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w, n, ok, err := WorkerFromEnv(func(k string) string { return tc.env[k] })
			if tc.errMention != "" {
				if err == nil || !strings.Contains(err.Error(), tc.errMention) {
					t.Fatalf("err %v, want one naming %s", err, tc.errMention)
				}
				return
			}
			if err != nil || w != tc.worker || n != tc.n || ok != tc.ok {
				t.Fatalf("got %d/%d %v %v, want %d/%d %v", w, n, ok, err, tc.worker, tc.n, tc.ok)
			}
		})
	}
}

func TestValidate(t *testing.T) {
	base := DefaultConfig()
	base.Shards, base.Cache, base.ModelConfig = []string{"a.tar"}, "c", "clip-tiny"
	for _, tc := range []struct {
		name string
		edit func(*Config)
		want string
	}{
		{"no shards", func(c *Config) { c.Shards = nil }, "no input shards"},
		{"views", func(c *Config) { c.Views = 0 }, "views 0"},
		{"worker", func(c *Config) { c.Worker, c.NumWorkers = 2, 2 }, "worker 2 of 2"},
		{"dtype", func(c *Config) { c.DType = "bf16" }, `dtype "bf16"`},
		{"fraction", func(c *Config) { c.MaxRejectFraction = 2 }, "max reject fraction"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := base
			tc.edit(&c)
			if err := c.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err %v, want %q", err, tc.want)
			}
		})
	}
}
