package inat

import (
	"bytes"
	"fmt"
	"runtime"
	"testing"
)

// BenchmarkReadCOCO streams a train.json-shaped file of 100,000 image
// records (iNat2021's train.json has 2.7M) and reports records/s and the
// heap kept per image.
func BenchmarkReadCOCO(b *testing.B) {
	const n = 100000
	var buf bytes.Buffer
	buf.WriteString(`{"info":{"year":2021},"images":[`)
	for i := 0; i < n; i++ {
		if i > 0 {
			buf.WriteByte(',')
		}
		fmt.Fprintf(&buf, `{"id":%d,"width":500,"height":375,"file_name":"train/%05d_Animalia_Chordata_Aves_Passeriformes_Parulidae_Setophaga_coronata/%08x-fbb4-4886-8600-a429e5efac23.jpg","license":1,"rights_holder":"someone","date":"2018-09-18 10:52:00+00:00","latitude":37.8651,"longitude":-119.5388,"location_uncertainty":977}`, i, i%10000, i)
	}
	buf.WriteString(`],"categories":[`)
	for c := 0; c < 10000; c++ {
		if c > 0 {
			buf.WriteByte(',')
		}
		fmt.Fprintf(&buf, `{"id":%d,"name":"Genus species%d","common_name":"Bird %d","supercategory":"Birds"}`, c, c, c)
	}
	buf.WriteString(`],"annotations":[`)
	for i := 0; i < n; i++ {
		if i > 0 {
			buf.WriteByte(',')
		}
		fmt.Fprintf(&buf, `{"id":%d,"image_id":%d,"category_id":%d}`, i, i, i%10000)
	}
	buf.WriteString(`],"licenses":[]}`)
	data := buf.Bytes()
	b.SetBytes(int64(len(data)))
	b.ResetTimer()
	var kept uint64
	for i := 0; i < b.N; i++ {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		ds, err := ReadCOCO(bytes.NewReader(data), COCOOptions{})
		if err != nil {
			b.Fatal(err)
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		kept = after.HeapAlloc - min(before.HeapAlloc, after.HeapAlloc)
		runtime.KeepAlive(ds)
	}
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "records/s")
	b.ReportMetric(float64(kept)/n, "heap-B/image")
}
