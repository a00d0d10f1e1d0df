// Command gpureport turns the logs of .gpu/check.sh (the prepared GPU check
// of issue 10) into one JSON report: the card, every part's outcome with the
// reason when it failed, each test's status and measured errors, each
// benchmark figure with its ratio against the PyTorch peer measured in the
// same run, and the end-to-end images/s. `just gpu-check` builds it into .gpu/.
//
//	gpureport -work /tmp/litcache-gpucheck -out gpu-report.json
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
)

func main() {
	work := flag.String("work", "/tmp/litcache-gpucheck", "check.sh's work folder (parts.tsv, logs/)")
	out := flag.String("out", "gpu-report.json", "report file to write")
	flag.Parse()
	b, err := json.MarshalIndent(Build(*work), "", " ")
	if err != nil {
		fmt.Fprintln(os.Stderr, "gpureport:", err)
		os.Exit(1)
	}
	if err := os.WriteFile(*out, append(b, '\n'), 0o644); err != nil {
		fmt.Fprintln(os.Stderr, "gpureport:", err)
		os.Exit(1)
	}
}
