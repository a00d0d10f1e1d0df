package predict

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// Extensions are the file name endings a folder walk takes (case-insensitive).
var Extensions = []string{".jpg", ".jpeg", ".png", ".webp"}

// photo is one entry of the list: a file to classify, or a path that could
// not be listed (err set), which becomes an error row.
type photo struct {
	path string
	err  error
}

// listPhotos expands paths: a file is taken as it is (whatever its name), a
// folder is walked recursively in lexical order for Extensions, hidden files
// and folders (".name") left out. A path that cannot be read is an entry with
// its error.
func listPhotos(paths []string) []photo {
	var out []photo
	for _, p := range paths {
		fi, err := os.Stat(p)
		if err != nil {
			out = append(out, photo{path: p, err: err})
			continue
		}
		if !fi.IsDir() {
			out = append(out, photo{path: p})
			continue
		}
		filepath.WalkDir(p, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				out = append(out, photo{path: path, err: err})
				if d != nil && d.IsDir() && path != p {
					return fs.SkipDir
				}
				return nil
			}
			hidden := strings.HasPrefix(d.Name(), ".") && path != p
			switch {
			case d.IsDir() && hidden:
				return fs.SkipDir
			case d.IsDir() || hidden:
				return nil
			}
			if isPhotoName(d.Name()) {
				out = append(out, photo{path: path})
			}
			return nil
		})
	}
	return out
}

func isPhotoName(name string) bool {
	ext := strings.ToLower(filepath.Ext(name))
	for _, e := range Extensions {
		if ext == e {
			return true
		}
	}
	return false
}
