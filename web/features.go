package web

import "encoding/json"

// appendFeatures adds "features":{…} to an encoded JSON object (the decide answer).
func appendFeatures(b []byte, features map[string]any) []byte {
	enc, err := json.Marshal(features)
	if err != nil || len(b) == 0 || b[len(b)-1] != '}' {
		return b // values decoded from JSON always encode
	}
	b = append(b[:len(b)-1], `,"features":`...)
	b = append(b, enc...)
	return append(b, '}')
}
