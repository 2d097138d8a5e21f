package ingest

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"time"
	"unicode/utf8"
)

// AppendMessage appends events as the JSON array lift publishes to lift.events: each
// event with event_id, type, user_id, timestamp and received_at (RFC 3339), value
// and, when it has them, properties and consent. ParseMessage reads it back into the same events.
// Written by hand because encoding/json's reflection and its re-validation of every
// properties object cost more than the rest of publishing. It fails only for an event
// whose value is not a finite number, which validation never lets through.
func AppendMessage(dst []byte, events []Event) ([]byte, error) {
	dst = append(dst, '[')
	for i := range events {
		e := &events[i]
		if math.IsNaN(e.Value) || math.IsInf(e.Value, 0) {
			return nil, fmt.Errorf("ingest: event %s: value %v is not a finite number", e.ID, e.Value)
		}
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, `{"event_id":"`...)
		dst = appendUUID(dst, e.ID)
		dst = append(dst, `","type":`...)
		dst = appendString(dst, e.Type)
		dst = append(dst, `,"user_id":`...)
		dst = appendString(dst, e.UserID)
		dst = append(dst, `,"timestamp":"`...)
		dst = e.Timestamp.AppendFormat(dst, time.RFC3339Nano)
		dst = append(dst, `","received_at":"`...)
		dst = e.ReceivedAt.AppendFormat(dst, time.RFC3339Nano)
		dst = append(dst, `","value":`...)
		dst = strconv.AppendFloat(dst, e.Value, 'g', -1, 64)
		if len(e.Properties) > 0 {
			// Validated events hold compact JSON objects.
			dst = append(dst, `,"properties":`...)
			dst = append(dst, e.Properties...)
		}
		if c := e.Consent; c != nil {
			dst = append(dst, `,"consent":{"analytics":`...)
			dst = strconv.AppendBool(dst, c.Analytics)
			dst = append(dst, `,"personalization":`...)
			dst = strconv.AppendBool(dst, c.Personalization)
			dst = append(dst, '}')
		}
		dst = append(dst, '}')
	}
	return append(dst, ']'), nil
}

func appendUUID(dst []byte, id [16]byte) []byte {
	var b [36]byte
	hex.Encode(b[0:8], id[0:4])
	b[8] = '-'
	hex.Encode(b[9:13], id[4:6])
	b[13] = '-'
	hex.Encode(b[14:18], id[6:8])
	b[18] = '-'
	hex.Encode(b[19:23], id[8:10])
	b[23] = '-'
	hex.Encode(b[24:], id[10:])
	return append(dst, b[:]...)
}

// appendString writes s as a JSON string: as it is when it needs no escaping (the
// usual case), otherwise through encoding/json.
func appendString(dst []byte, s string) []byte {
	plain := true
	ascii := true
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c == '"' || c == '\\' {
			plain = false
			break
		}
		if c >= 0x80 {
			ascii = false
		}
	}
	if plain && (ascii || utf8.ValidString(s)) {
		dst = append(dst, '"')
		dst = append(dst, s...)
		return append(dst, '"')
	}
	b, _ := json.Marshal(s) // a string always encodes
	return append(dst, b...)
}
