package store

import (
	"strings"
	"testing"
)

// TestSelectSplit is the split rule of every reader, case by case.
func TestSelectSplit(t *testing.T) {
	cases := []struct {
		have       []string
		want, role string
		got, err   string
	}{
		{[]string{"train"}, "", SplitVal, "train", ""},
		{[]string{"val"}, "", SplitTrain, "val", ""},
		{[]string{"train", "val"}, "", SplitVal, "val", ""},
		{[]string{"val", "train"}, "", SplitTrain, "train", ""},
		{[]string{"train", "val"}, "train", SplitVal, "train", ""},
		{[]string{"a", "b"}, "", SplitTrain, "", `several splits (a, b) and none is "train"`},
		{nil, "", SplitVal, "", "no finished part"},
		{nil, "val", SplitVal, "", "no finished part"},
		{[]string{"val"}, "test", SplitVal, "", `no split "test" (the cache has: val)`},
	}
	for _, tc := range cases {
		t.Run(strings.Join(tc.have, ",")+"/"+tc.want+"/"+tc.role, func(t *testing.T) {
			got, err := SelectSplit(tc.have, tc.want, tc.role)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("got %q, err %v, want an error containing %q", got, err, tc.err)
				}
				return
			}
			if err != nil || got != tc.got {
				t.Fatalf("got %q %v, want %q", got, err, tc.got)
			}
		})
	}
}
