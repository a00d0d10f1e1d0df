// Package clipvocab holds CLIP's BPE vocabulary, bpe_simple_vocab_16e6.txt.gz,
// embedded in the binary as open_clip ships it inside its Python package, so
// that every command tokenizes with CLIP's real vocabulary without a file to
// fetch. The file is OpenAI's, copied unchanged from
// https://github.com/openai/CLIP (clip/bpe_simple_vocab_16e6.txt.gz) under
// the MIT licence in LICENSE beside it (see NOTICE).
package clipvocab

import _ "embed"

// Gzip is bpe_simple_vocab_16e6.txt.gz, byte for byte.
//
//go:embed bpe_simple_vocab_16e6.txt.gz
var Gzip []byte

// SHA256 is the hex sha256 of Gzip (and of the file in openai/CLIP).
const SHA256 = "924691ac288e54409236115652ad4aa250f48203de50a9e4722a6ecd48d6804a"

// Name is the file's name, as CLIP and open_clip call it.
const Name = "bpe_simple_vocab_16e6.txt.gz"
