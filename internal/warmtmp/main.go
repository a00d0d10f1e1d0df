package main

import (
	_ "github.com/apache/arrow-go/v18/arrow/ipc"
	_ "github.com/apache/arrow-go/v18/parquet/pqarrow"
	_ "github.com/dgraph-io/badger/v4"
	_ "github.com/ebitengine/purego"
	_ "github.com/urfave/cli/v2"
	_ "github.com/klauspost/compress/zstd"
	_ "gonum.org/v1/plot/plotter"
	_ "gonum.org/v1/plot/vg/vgimg"
	_ "golang.org/x/image/draw"
	_ "golang.org/x/text/unicode/norm"
)
func main(){}
