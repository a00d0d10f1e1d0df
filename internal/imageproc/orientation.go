package imageproc

// TIFFOrientation returns the EXIF orientation (1..8) held in a TIFF-format
// EXIF block (starting "II*\x00" or "MM\x00*"), 0 when absent or unreadable:
// for containers this package does not decode itself, such as WebP's EXIF
// chunk.
func TIFFOrientation(b []byte) int { return tiffOrientation(b) }
