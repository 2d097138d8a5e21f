package segments

// CompactStrings runs the value table's compaction now, which the engine otherwise
// does only once the table has grown past tens of thousands of values.
func CompactStrings(e *Engine) { e.compactStrings() }
