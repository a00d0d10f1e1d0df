package imageproc

import (
	"errors"
	"fmt"
	"path/filepath"
	"runtime"
	"strings"
	"sync"

	"github.com/litcache/litcache/internal/native"
)

// libjpeg-turbo through its TurboJPEG C API (libturbojpeg.so.0), loaded at run
// time with purego. Decompression uses the library defaults, which are what
// PIL gets from libjpeg: the accurate integer IDCT and fancy upsampling.

// TurboJPEG constants (turbojpeg.h).
const (
	tjpfRGB   = 0
	tjpfCMYK  = 11
	tjcsCMYK  = 3
	tjcsYCCK  = 4
	tjErrWarn = 0
)

// turboSpec names the library for internal/native.
var turboSpec = native.Spec{
	Name:    "libjpeg-turbo",
	Sonames: []string{"libturbojpeg.so.0", "libturbojpeg.so", "libturbojpeg.0.dylib", "libturbojpeg.dylib"},
	Env:     []string{"LITCACHE_TURBOJPEG"},
}

// turbo holds the bound functions and a small pool of decompressor handles
// (a handle is not safe for concurrent use).
type turbo struct {
	path           string
	initDecompress func() uintptr
	destroy        func(h uintptr) int32
	header3        func(h uintptr, buf *byte, size uint64, w, ht, subsamp, colorspace *int32) int32
	decompress2    func(h uintptr, buf *byte, size uint64, dst *byte, w, pitch, ht, pf, flags int32) int32
	errorStr2      func(h uintptr) string
	errorCode      func(h uintptr) int32 // nil before TurboJPEG 2.0
	handles        chan uintptr
}

var (
	turboOnce sync.Once
	turboLib  *turbo
	turboErr  error
)

// loadTurbo opens libjpeg-turbo once per process.
func loadTurbo() (*turbo, error) {
	turboOnce.Do(func() {
		lib, err := native.Open(turboSpec)
		if err != nil {
			turboErr = err
			return
		}
		t := &turbo{path: resolveLibPath(lib.Path), handles: make(chan uintptr, 2*runtime.GOMAXPROCS(0))}
		for _, b := range []struct {
			fn   any
			name string
		}{
			{&t.initDecompress, "tjInitDecompress"},
			{&t.destroy, "tjDestroy"},
			{&t.header3, "tjDecompressHeader3"},
			{&t.decompress2, "tjDecompress2"},
			{&t.errorStr2, "tjGetErrorStr2"},
		} {
			if err := lib.Bind(b.fn, b.name); err != nil {
				turboErr = fmt.Errorf("imageproc: libjpeg-turbo: %w", err)
				return
			}
		}
		if lib.Has("tjGetErrorCode") {
			_ = lib.Bind(&t.errorCode, "tjGetErrorCode")
		}
		turboLib = t
	})
	return turboLib, turboErr
}

// resolveLibPath turns a bare soname into the file it links to, e.g.
// /usr/lib/x86_64-linux-gnu/libturbojpeg.so.0.2.0, which tells the version;
// it returns name unchanged when it cannot.
func resolveLibPath(name string) string {
	if filepath.IsAbs(name) {
		if p, err := filepath.EvalSymlinks(name); err == nil {
			return p
		}
		return name
	}
	for _, dir := range native.SearchDirs() {
		if p, err := filepath.EvalSymlinks(filepath.Join(dir, name)); err == nil {
			return p
		}
	}
	return name
}

// TurboJPEG reports whether libjpeg-turbo was found, and the file (for
// doctor; its name carries the library version).
func TurboJPEG() (path string, ok bool) {
	t, err := loadTurbo()
	if err != nil {
		return "", false
	}
	return t.path, true
}

func (t *turbo) get() (uintptr, error) {
	select {
	case h := <-t.handles:
		return h, nil
	default:
	}
	h := t.initDecompress()
	if h == 0 {
		return 0, fmt.Errorf("imageproc: libjpeg-turbo: tjInitDecompress failed: %s", t.errorStr2(0))
	}
	return h, nil
}

func (t *turbo) put(h uintptr) {
	select {
	case t.handles <- h:
	default:
		t.destroy(h)
	}
}

// errTurboRetry marks a failure the pure-Go decoder should judge instead
// (an unusual layout TurboJPEG refuses, or a warning that is not truncation).
var errTurboRetry = errors.New("imageproc: libjpeg-turbo declined")

// decode decompresses a JPEG to RGB. Warnings about data ending early are
// ErrTruncated (libjpeg-turbo would pad the image with grey), stray bytes
// before a marker are accepted as PIL accepts them, and other warnings and
// errors return errTurboRetry so that image/jpeg decides (and words the
// error).
func (t *turbo) decode(data []byte, lim Limits) (*RGB, error) {
	// TurboJPEG keeps warning and error texts in thread-local storage: the
	// calls that make a message and the one that reads it must run on the
	// same OS thread, or a truncation warning reads as "No error".
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	h, err := t.get()
	if err != nil {
		return nil, err
	}
	// A handle goes back to the pool only after a clean decode: after an
	// error or a warning libjpeg's state is not trusted for the next image.
	clean := false
	defer func() {
		if clean {
			t.put(h)
		} else {
			t.destroy(h)
		}
	}()
	var w, ht, subsamp, cs int32
	if t.header3(h, &data[0], uint64(len(data)), &w, &ht, &subsamp, &cs) != 0 {
		return nil, fmt.Errorf("%w: header: %s", errTurboRetry, t.errorStr2(h))
	}
	if w <= 0 || ht <= 0 {
		return nil, fmt.Errorf("%w: header gives size %d×%d", errTurboRetry, w, ht)
	}
	if err := lim.check(int(w), int(ht)); err != nil {
		return nil, err
	}
	pf, ch := int32(tjpfRGB), 3
	if cs == tjcsCMYK || cs == tjcsYCCK {
		pf, ch = tjpfCMYK, 4
	}
	buf := make([]uint8, int(w)*int(ht)*ch)
	if t.decompress2(h, &data[0], uint64(len(data)), &buf[0], w, w*int32(ch), ht, pf, 0) == 0 {
		clean = true
	} else {
		msg := t.errorStr2(h)
		switch {
		case strings.Contains(strings.ToLower(msg), "premature end"):
			// "Premature end of JPEG file", "Corrupt JPEG data: premature end
			// of data segment": libjpeg filled the rest with grey; PIL raises.
			return nil, fmt.Errorf("%w: %s", ErrTruncated, msg)
		case t.errorCode != nil && t.errorCode(h) == tjErrWarn && strings.Contains(msg, "extraneous bytes"):
			// Stray bytes before a marker: the image is complete, and PIL
			// accepts it too. Any other warning goes to image/jpeg below.
		default:
			return nil, fmt.Errorf("%w: %s", errTurboRetry, msg)
		}
	}
	if ch == 3 {
		return &RGB{W: int(w), H: int(ht), Pix: buf}, nil
	}
	// libjpeg gives CMYK as stored; PIL reads 4-channel JPEGs as Adobe-inverted
	// ("CMYK;I"), so invert to ink values before Pillow's conversion.
	out := NewRGB(int(w), int(ht))
	for i, j := 0, 0; i < len(buf); i, j = i+4, j+3 {
		out.Pix[j], out.Pix[j+1], out.Pix[j+2] = cmykToRGB(255-buf[i], 255-buf[i+1], 255-buf[i+2], 255-buf[i+3])
	}
	return out, nil
}
