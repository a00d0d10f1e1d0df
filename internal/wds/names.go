// Package wds reads and writes webdataset shards as OpenCLIP and img2dataset
// use them: tar files (optionally .tar.gz or .tar.zst) whose consecutive
// members sharing a key form one sample, e.g. 000000042.jpg 000000042.txt
// 000000042.json 000000042.cls, plus a sizes.json beside the shards. Member
// names are data from outside: absolute paths, ".." and empty keys are
// rejected on write, and on read reported (MemberError) and skipped while
// the rest of the shard is read. Only damage that leaves the rest unreadable
// (DamageError) ends a shard early, after every complete sample before it.
package wds

import (
	"fmt"
	"path"
	"strings"
)

// SplitName splits a member name into the sample key and the extension the
// way webdataset does: the key is everything up to the first dot of the base
// name (directories included), the extension everything after it. Unsafe or
// malformed names are errors.
func SplitName(name string) (key, ext string, err error) {
	key, ext, why := splitName(name)
	if why != "" {
		return "", "", nameError(name, why)
	}
	return key, ext, nil
}

// splitName is SplitName with the problem, if any, as a bare reason.
func splitName(name string) (key, ext, why string) {
	if why := nameProblem(name); why != "" {
		return "", "", why
	}
	dir, base := path.Split(name)
	dot := strings.IndexByte(base, '.')
	switch {
	case dot < 0:
		return "", "", "no extension"
	case dot == 0:
		return "", "", "empty key"
	case dot == len(base)-1:
		return "", "", "empty extension"
	}
	return dir + base[:dot], base[dot+1:], ""
}

// CheckName rejects member names that could escape the folder a shard is
// unpacked into or that no loader can group: empty names, absolute paths,
// ".." components, backslashes, NUL and other control characters.
func CheckName(name string) error {
	if why := nameProblem(name); why != "" {
		return nameError(name, why)
	}
	return nil
}

func nameError(name, why string) error {
	if name == "" {
		return fmt.Errorf("wds: %s", why)
	}
	return fmt.Errorf("wds: member %q: %s", name, why)
}

// nameProblem says what is wrong with a member name, or "".
func nameProblem(name string) string {
	switch {
	case name == "":
		return "empty member name"
	case strings.HasPrefix(name, "/"):
		return "absolute path"
	case strings.ContainsRune(name, '\\'):
		return "backslash in name"
	}
	for _, r := range name {
		if r < 0x20 || r == 0x7f {
			return "control character in name"
		}
	}
	for _, part := range strings.Split(name, "/") {
		if part == ".." {
			return `".." in path`
		}
		if part == "" || part == "." {
			return `empty or "." path component`
		}
	}
	return ""
}

// CheckKey rejects keys that cannot round-trip through SplitName: empty, a
// dot in the base name, or an unsafe path.
func CheckKey(key string) error {
	if key == "" {
		return fmt.Errorf("wds: empty sample key")
	}
	if err := CheckName(key); err != nil {
		return err
	}
	if strings.Contains(path.Base(key), ".") {
		return fmt.Errorf("wds: key %q: a dot in the key would split it", key)
	}
	return nil
}

// CheckExt rejects extensions that are empty or hold a path separator.
func CheckExt(ext string) error {
	if ext == "" || strings.ContainsAny(ext, "/\\") || strings.HasPrefix(ext, ".") || strings.HasSuffix(ext, ".") {
		return fmt.Errorf("wds: extension %q: want e.g. \"jpg\" (no leading dot, no slash)", ext)
	}
	for _, r := range ext {
		if r < 0x20 || r == 0x7f {
			return fmt.Errorf("wds: extension %q: control character", ext)
		}
	}
	return nil
}
