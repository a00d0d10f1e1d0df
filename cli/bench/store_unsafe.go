package bench

import "unsafe"

// unsafeU16 and unsafeF32 view file bytes as numbers (little-endian host),
// as the mmap reader does, so both read paths sum the same way.
func unsafeU16(b []byte) []uint16 {
	if len(b) < 2 {
		return nil
	}
	return unsafe.Slice((*uint16)(unsafe.Pointer(&b[0])), len(b)/2)
}

func unsafeF32(b []byte) []float32 {
	if len(b) < 4 {
		return nil
	}
	return unsafe.Slice((*float32)(unsafe.Pointer(&b[0])), len(b)/4)
}
