package condition

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// SavedGroups maps a saved-group id to the values of its members; $inGroup and
// $notInGroup look group ids up here. A missing group has no members.
type SavedGroups map[string][]any

// ConditionError reports why a condition was rejected. Path names the offending element
// the way a client wrote it, e.g. "country.$inn" or "$and[1].age.$gt"; it is empty when
// the condition as a whole is at fault (not JSON, not an object).
type ConditionError struct {
	Path    string
	Message string
}

// Error returns the message prefixed with the path, if any.
func (e *ConditionError) Error() string {
	if e.Path == "" {
		return "invalid condition: " + e.Message
	}
	return "invalid condition at " + e.Path + ": " + e.Message
}

func condErrorf(path, format string, args ...any) *ConditionError {
	return &ConditionError{Path: path, Message: fmt.Sprintf(format, args...)}
}

// Condition is a compiled targeting condition in GrowthBook's MongoDB-style condition
// language. It is immutable once parsed and safe for concurrent use. The zero value and
// a nil *Condition match everything.
type Condition struct {
	root node
}

// ParseConditionJSON parses a condition from its JSON text. Empty input, "null" and "{}"
// give a condition that matches everything. Every error it returns is a
// *ConditionError, so callers can report the offending path; see ParseCondition for
// what is rejected.
func ParseConditionJSON(data []byte) (*Condition, error) {
	if len(bytes.TrimSpace(data)) == 0 {
		return &Condition{}, nil
	}
	var raw any
	if err := json.Unmarshal(data, &raw); err != nil {
		return nil, &ConditionError{Message: "not valid JSON: " + err.Error()}
	}
	return ParseCondition(raw)
}

// ParseCondition compiles a condition decoded from JSON: a map[string]any as produced
// by encoding/json (Go numbers of any width, []string and map[string]string are also
// accepted), or json.RawMessage / []byte holding its JSON text. nil and an empty map
// give a condition that matches everything. The input is copied, so the caller may
// reuse it.
//
// GrowthBook evaluates a malformed condition to false, and one with an operator it does
// not know to "unknown", which fails even under $not. ParseCondition instead returns a
// *ConditionError naming the offending path for: an unknown operator, an operand of the
// wrong type ($in that is not an array of scalars, $gt that is an array, $regex that
// does not compile as a Go regular expression, $size that is neither a number nor an
// operator object, ...), and an object that mixes operators with field names. Operands
// of the right shape that can never match, such as {"$gt": true}, are accepted, as
// GrowthBook evaluates them (so their $not matches). In a condition object, keys other
// than $and, $or, $nor and $not are attribute paths even when they start with "$", as
// in GrowthBook (its "$groups" idiom).
func ParseCondition(raw any) (*Condition, error) {
	switch r := raw.(type) {
	case json.RawMessage:
		return ParseConditionJSON(r)
	case []byte:
		return ParseConditionJSON(r)
	case nil:
		return &Condition{}, nil
	}
	v, err := normalize(raw, "")
	if err != nil {
		return nil, err
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, &ConditionError{Message: "must be a JSON object, not " + JSONKind(v)}
	}
	root, err := compileNode(m, "")
	if err != nil {
		return nil, err
	}
	return &Condition{root: root}, nil
}

// normalize deep-copies raw into the shapes encoding/json produces, so the compiler
// deals with one representation and the compiled condition shares nothing with the
// caller.
func normalize(raw any, path string) (any, error) {
	switch x := raw.(type) {
	case nil, string, bool:
		return x, nil
	case map[string]any:
		m := make(map[string]any, len(x))
		for k, v := range x {
			n, err := normalize(v, JoinPath(path, k))
			if err != nil {
				return nil, err
			}
			m[k] = n
		}
		return m, nil
	case map[string]string:
		m := make(map[string]any, len(x))
		for k, v := range x {
			m[k] = v
		}
		return m, nil
	case []any:
		s := make([]any, len(x))
		for i, v := range x {
			n, err := normalize(v, IndexPath(path, i))
			if err != nil {
				return nil, err
			}
			s[i] = n
		}
		return s, nil
	case []string:
		s := make([]any, len(x))
		for i, v := range x {
			s[i] = v
		}
		return s, nil
	case json.Number:
		f, err := strconv.ParseFloat(string(x), 64)
		if err != nil {
			return nil, condErrorf(path, "invalid number %q", string(x))
		}
		return f, nil
	}
	if f, ok := goNumber(raw); ok {
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return nil, condErrorf(path, "number must be finite")
		}
		return f, nil
	}
	return nil, condErrorf(path, "unsupported value of Go type %T", raw)
}

// JoinPath extends an error path (ConditionError.Path) with an object key; other
// languages that embed conditions (segments' rules and features) name their elements
// the same way.
func JoinPath(base, key string) string {
	if base == "" {
		return key
	}
	return base + "." + key
}

// IndexPath extends an error path with an array index.
func IndexPath(base string, i int) string {
	return base + "[" + strconv.Itoa(i) + "]"
}

// JSONKind names the JSON type of a decoded value for an error message.
func JSONKind(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case string:
		return "a string"
	case float64:
		return "a number"
	case bool:
		return "a boolean"
	case []any:
		return "an array"
	default:
		return "an object"
	}
}

// node is one condition object: every clause must hold.
type node struct {
	clauses []clause
}

type clauseKind uint8

const (
	clauseField clauseKind = iota
	clauseAnd
	clauseOr
	clauseNor
	clauseNot
)

type clause struct {
	kind  clauseKind
	path  []pathPart // clauseField
	value valueCond  // clauseField
	subs  []node     // $and, $or, $nor; $not has exactly one
}

// pathPart is one segment of a dotted attribute path. JavaScript's `in` also finds
// array indices and an array's length, so those are resolved up front.
type pathPart struct {
	key   string
	index int // canonical array index, or -1
}

func splitPath(p string) []pathPart {
	keys := strings.Split(p, ".")
	parts := make([]pathPart, len(keys))
	for i, k := range keys {
		parts[i] = pathPart{key: k, index: arrayIndex(k)}
	}
	return parts
}

// arrayIndex returns the array index k names in JavaScript ("0", "12" but not "01" or
// "-1"), or -1.
func arrayIndex(k string) int {
	if k == "" || (len(k) > 1 && k[0] == '0') {
		return -1
	}
	n, err := strconv.ParseUint(k, 10, 32)
	if err != nil || n >= math.MaxUint32 || n > math.MaxInt32 {
		return -1
	}
	return int(n)
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func compileNode(m map[string]any, path string) (node, error) {
	keys := sortedKeys(m)
	clauses := make([]clause, 0, len(keys))
	for _, k := range keys {
		v, p := m[k], JoinPath(path, k)
		switch k {
		case "$and", "$or", "$nor":
			list, ok := v.([]any)
			if !ok {
				return node{}, condErrorf(p, "must be an array of condition objects, not %s", JSONKind(v))
			}
			subs := make([]node, len(list))
			for i, e := range list {
				em, ok := e.(map[string]any)
				if !ok {
					return node{}, condErrorf(IndexPath(p, i), "must be a condition object, not %s", JSONKind(e))
				}
				sub, err := compileNode(em, IndexPath(p, i))
				if err != nil {
					return node{}, err
				}
				subs[i] = sub
			}
			kind := clauseAnd
			switch k {
			case "$or":
				kind = clauseOr
			case "$nor":
				kind = clauseNor
			}
			clauses = append(clauses, clause{kind: kind, subs: subs})
		case "$not":
			em, ok := v.(map[string]any)
			if !ok {
				return node{}, condErrorf(p, "must be a condition object, not %s", JSONKind(v))
			}
			sub, err := compileNode(em, p)
			if err != nil {
				return node{}, err
			}
			clauses = append(clauses, clause{kind: clauseNot, subs: []node{sub}})
		default:
			vc, err := compileValue(v, p, false)
			if err != nil {
				return node{}, err
			}
			clauses = append(clauses, clause{kind: clauseField, path: splitPath(k), value: vc})
		}
	}
	// Attribute tests are cheaper than nested groups, so let them fail first.
	slices.SortStableFunc(clauses, func(a, b clause) int {
		return int(a.kind) - int(b.kind)
	})
	return node{clauses: clauses}, nil
}

type valueKind uint8

// A value written without an operator matches only an attribute of its own type:
// "5" does not match 5, true does not match 1 (GrowthBook's SDKs since spec 0.10).
const (
	valueString  valueKind = iota // the attribute is this string
	valueNumber                   // the attribute is this number
	valueBool                     // the attribute is this boolean
	valueNull                     // the attribute is null or missing
	valueLiteral                  // JSON equality with an array or object
	valueOps                      // operator object: every operator must hold
)

// valueCond is what GrowthBook calls a condition value: the right-hand side for one
// attribute.
type valueCond struct {
	kind valueKind
	fold bool // $alli: strings compare case-insensitively
	str  string
	num  float64
	b    bool
	lit  any
	ops  []op
}

func compileValue(v any, path string, fold bool) (valueCond, error) {
	switch x := v.(type) {
	case string:
		if fold {
			return valueCond{kind: valueString, fold: true, str: jsLower(x)}, nil
		}
		return valueCond{kind: valueString, str: x}, nil
	case float64:
		return valueCond{kind: valueNumber, num: x}, nil
	case bool:
		return valueCond{kind: valueBool, b: x}, nil
	case nil:
		return valueCond{kind: valueNull}, nil
	case []any:
		return valueCond{kind: valueLiteral, lit: x}, nil
	}
	m := v.(map[string]any)
	switch operatorCount(m) {
	case 0:
		if len(m) == 0 {
			// An empty object has no operators to fail: it matches everything, as in
			// GrowthBook, where every key of {} is an operator.
			return valueCond{kind: valueOps}, nil
		}
		return valueCond{kind: valueLiteral, lit: m}, nil
	case len(m):
	default:
		return valueCond{}, condErrorf(path, "mixes operators with field names; use only operators, or only fields to match an exact object")
	}
	keys := sortedKeys(m)
	ops := make([]op, len(keys))
	for i, k := range keys {
		o, err := compileOp(k, m[k], JoinPath(path, k))
		if err != nil {
			return valueCond{}, err
		}
		ops[i] = o
	}
	return valueCond{kind: valueOps, ops: ops}, nil
}

// operatorCount counts keys starting with "$". GrowthBook treats an object as an
// operator object only when it is non-empty and every key is an operator.
func operatorCount(m map[string]any) int {
	n := 0
	for k := range m {
		if strings.HasPrefix(k, "$") {
			n++
		}
	}
	return n
}

func isOperatorObject(v any) bool {
	m, ok := v.(map[string]any)
	return ok && len(m) > 0 && operatorCount(m) == len(m)
}

type opCode uint8

const (
	opEq opCode = iota
	opNe
	opLt
	opLte
	opGt
	opGte
	opExists
	opIn
	opNin
	opInGroup
	opNotInGroup
	opNot
	opSize
	opElemMatch
	opAll
	opRegex
	opType
	opVeq
	opVne
	opVgt
	opVgte
	opVlt
	opVlte
	opNever
)

var opCodes = map[string]opCode{
	"$eq": opEq, "$ne": opNe,
	"$lt": opLt, "$lte": opLte, "$gt": opGt, "$gte": opGte,
	"$exists": opExists,
	"$in":     opIn, "$nin": opNin, "$ini": opIn, "$nini": opNin,
	"$inGroup": opInGroup, "$notInGroup": opNotInGroup,
	"$not": opNot, "$size": opSize, "$elemMatch": opElemMatch,
	"$all": opAll, "$alli": opAll,
	"$regex": opRegex, "$regexi": opRegex,
	"$type": opType,
	"$veq":  opVeq, "$vne": opVne, "$vgt": opVgt, "$vgte": opVgte, "$vlt": opVlt, "$vlte": opVlte,
	// Logical operators belong on a condition, not on a value, where GrowthBook
	// evaluates them to false (so {"name": {"$not": {"$or": [...]}}} matches).
	"$and": opNever, "$or": opNever, "$nor": opNever,
}

// HasLogical reports whether m has $and, $or or $nor, which make an $elemMatch operand
// a condition on each element's fields rather than operators on the element itself.
func HasLogical(m map[string]any) bool {
	_, and := m["$and"]
	_, or := m["$or"]
	_, nor := m["$nor"]
	return and || or || nor
}

var typeNames = map[string]bool{
	"string": true, "number": true, "boolean": true, "object": true, "array": true,
	"null": true, "undefined": true,
}

// op is one compiled operator with its operand prepared for the hot path.
type op struct {
	code   opCode
	scalar scalar         // $eq, $ne, $lt…$gte
	flag   bool           // $exists
	str    string         // group id, type name, padded version
	set    *valueSet      // $in, $nin, $ini, $nini
	re     *regexp.Regexp // $regex, $regexi
	sub    *valueCond     // $not, $size, $elemMatch on an operator object
	elem   *node          // $elemMatch on a condition object
	all    []valueCond    // $all, $alli
}

func compileOp(name string, arg any, path string) (op, error) {
	code, ok := opCodes[name]
	if !ok {
		return op{}, condErrorf(path, "unknown operator %q", name)
	}
	o := op{code: code}
	switch code {
	case opEq, opNe:
		// An array or object is never === to anything, so $eq fails and $ne holds.
		if s, ok := toScalar(arg); ok {
			o.scalar = s
		} else {
			o.scalar = scalar{kind: scalarNever}
		}
	case opLt, opLte, opGt, opGte:
		s, ok := toScalar(arg)
		if !ok {
			return op{}, condErrorf(path, "must be a number or a string, not %s", JSONKind(arg))
		}
		// Only numbers and strings are ordered; other scalars are accepted and never
		// match, as in GrowthBook.
		o.scalar = s
	case opExists:
		b, ok := arg.(bool)
		if !ok {
			return op{}, condErrorf(path, "must be true or false, not %s", JSONKind(arg))
		}
		o.flag = b
	case opIn, opNin:
		list, ok := arg.([]any)
		if !ok {
			return op{}, condErrorf(path, "must be an array of values, not %s", JSONKind(arg))
		}
		set, err := newValueSet(list, path, name == "$ini" || name == "$nini")
		if err != nil {
			return op{}, err
		}
		o.set = set
	case opInGroup, opNotInGroup:
		id, ok := arg.(string)
		if !ok {
			return op{}, condErrorf(path, "must be a saved group id (a string), not %s", JSONKind(arg))
		}
		o.str = id
	case opNot:
		sub, err := compileValue(arg, path, false)
		if err != nil {
			return op{}, err
		}
		o.sub = &sub
	case opSize:
		if _, isNum := arg.(float64); !isNum && !isOperatorObject(arg) {
			return op{}, condErrorf(path, "must be a number or an operator object such as {\"$gt\": 2}, not %s", JSONKind(arg))
		}
		sub, err := compileValue(arg, path, false)
		if err != nil {
			return op{}, err
		}
		o.sub = &sub
	case opElemMatch:
		m, ok := arg.(map[string]any)
		if !ok {
			return op{}, condErrorf(path, "must be a condition or operator object, not %s", JSONKind(arg))
		}
		if isOperatorObject(m) && !HasLogical(m) {
			sub, err := compileValue(m, path, false)
			if err != nil {
				return op{}, err
			}
			o.sub = &sub
			break
		}
		// A condition, including one of only $and, $or or $nor, tests each element's
		// fields.
		if n := operatorCount(m); n > 0 && n < len(m) {
			return op{}, condErrorf(path, "mixes operators with field names")
		}
		elem, err := compileNode(m, path)
		if err != nil {
			return op{}, err
		}
		o.elem = &elem
	case opAll:
		list, ok := arg.([]any)
		if !ok {
			return op{}, condErrorf(path, "must be an array, not %s", JSONKind(arg))
		}
		o.all = make([]valueCond, len(list))
		for i, e := range list {
			vc, err := compileValue(e, IndexPath(path, i), name == "$alli")
			if err != nil {
				return op{}, err
			}
			o.all[i] = vc
		}
	case opRegex:
		pattern, ok := arg.(string)
		if !ok {
			return op{}, condErrorf(path, "must be a regular expression string, not %s", JSONKind(arg))
		}
		if name == "$regexi" {
			pattern = "(?i)" + pattern
		}
		re, err := regexp.Compile(pattern)
		if err != nil {
			return op{}, condErrorf(path, "invalid regular expression: %v", err)
		}
		o.re = re
	case opType:
		t, ok := arg.(string)
		if !ok || !typeNames[t] {
			return op{}, condErrorf(path, "must be one of string, number, boolean, object, array, null, undefined")
		}
		o.str = t
	case opVeq, opVne, opVgt, opVgte, opVlt, opVlte:
		switch arg.(type) {
		case string, float64:
		default:
			return op{}, condErrorf(path, "must be a version string, not %s", JSONKind(arg))
		}
		o.str = string(appendPaddedVersion(nil, arg))
		o.scalar, _ = toScalar(arg) // its kind: a version compares only with its own type
	}
	return o, nil
}

type scalarKind uint8

const (
	scalarNull scalarKind = iota
	scalarBool
	scalarNumber
	scalarString
	scalarNever // an array or object operand of $eq or $ne
)

// scalar is a JSON primitive operand.
type scalar struct {
	kind scalarKind
	b    bool
	num  float64
	str  string
}

func toScalar(v any) (scalar, bool) {
	switch x := v.(type) {
	case nil:
		return scalar{kind: scalarNull}, true
	case bool:
		return scalar{kind: scalarBool, b: x}, true
	case float64:
		return scalar{kind: scalarNumber, num: x}, true
	case string:
		return scalar{kind: scalarString, str: x}, true
	}
	return scalar{}, false
}

// setIndexMin is the list length from which $in uses a map instead of a scan: below it
// comparing a few strings is faster than hashing.
const setIndexMin = 8

// valueSet is the operand of $in and friends, with JavaScript's strict equality as
// membership test.
type valueSet struct {
	fold     bool // $ini, $nini: strings are stored lower-cased
	strs     []string
	strIndex map[string]struct{}
	nums     []float64
	numIndex map[float64]struct{}
	null     bool
	hasTrue  bool
	hasFalse bool
}

func newValueSet(list []any, path string, fold bool) (*valueSet, error) {
	s := &valueSet{fold: fold}
	for i, e := range list {
		switch x := e.(type) {
		case string:
			if fold {
				x = jsLower(x)
			}
			s.strs = append(s.strs, x)
		case float64:
			s.nums = append(s.nums, x)
		case bool:
			if x {
				s.hasTrue = true
			} else {
				s.hasFalse = true
			}
		case nil:
			s.null = true
		default:
			return nil, condErrorf(IndexPath(path, i), "must be a string, number, boolean or null, not %s", JSONKind(e))
		}
	}
	if len(s.strs) >= setIndexMin {
		s.strIndex = make(map[string]struct{}, len(s.strs))
		for _, v := range s.strs {
			s.strIndex[v] = struct{}{}
		}
	}
	if len(s.nums) >= setIndexMin {
		s.numIndex = make(map[float64]struct{}, len(s.nums))
		for _, v := range s.nums {
			s.numIndex[v] = struct{}{}
		}
	}
	return s, nil
}
