package condition

import "encoding/json"

// Match reports whether attrs satisfy the condition, with GrowthBook's evalCondition
// semantics (spec 0.12): dotted paths reach into nested objects (and arrays by index),
// a missing attribute reads as null, $in and $nin intersect when the attribute is an
// array, and types are strict: a value or operator matches only an attribute of its
// own type ("5" never equals 5, only two numbers or two strings are ordered, $regex
// tests strings only, versions compare only with versions of the same type), and a
// negation matches whatever its positive form does not. groups resolves $inGroup and
// $notInGroup; it may be nil.
//
// attrs holds JSON-decoded values (string, float64, bool, nil, []any, map[string]any);
// Go integers, float32, json.Number, []string and map[string]string are accepted too.
// Match does not modify attrs and does not allocate for equality, $in on strings and
// numeric comparisons.
func (c *Condition) Match(attrs map[string]any, groups SavedGroups) bool {
	if c == nil {
		return true
	}
	return c.root.match(attrs, groups)
}

func (n *node) match(obj any, groups SavedGroups) bool {
	for i := range n.clauses {
		c := &n.clauses[i]
		switch c.kind {
		case clauseField:
			if !c.value.match(lookup(obj, c.path), groups) {
				return false
			}
		case clauseAnd:
			for j := range c.subs {
				if !c.subs[j].match(obj, groups) {
					return false
				}
			}
		case clauseOr:
			if !anyMatch(c.subs, obj, groups) {
				return false
			}
		case clauseNor:
			if anyMatch(c.subs, obj, groups) {
				return false
			}
		case clauseNot:
			if c.subs[0].match(obj, groups) {
				return false
			}
		}
	}
	return true
}

// anyMatch is GrowthBook's evalOr, under which an empty list passes: an empty $or
// matches everyone and an empty $nor matches no one.
func anyMatch(subs []node, obj any, groups SavedGroups) bool {
	if len(subs) == 0 {
		return true
	}
	for i := range subs {
		if subs[i].match(obj, groups) {
			return true
		}
	}
	return false
}

// lookup follows a dotted path; anything missing along the way reads as null.
func lookup(obj any, path []pathPart) any {
	cur := obj
	for i := range path {
		p := &path[i]
		switch m := cur.(type) {
		case map[string]any:
			v, ok := m[p.key]
			if !ok {
				return nil
			}
			cur = v
		case map[string]string:
			v, ok := m[p.key]
			if !ok {
				return nil
			}
			cur = v
		case []any:
			switch {
			case p.index >= 0 && p.index < len(m):
				cur = m[p.index]
			case p.key == "length":
				cur = float64(len(m))
			default:
				return nil
			}
		case []string:
			switch {
			case p.index >= 0 && p.index < len(m):
				cur = m[p.index]
			case p.key == "length":
				cur = float64(len(m))
			default:
				return nil
			}
		default:
			return nil
		}
	}
	return cur
}

func (vc *valueCond) match(v any, groups SavedGroups) bool {
	switch vc.kind {
	case valueString:
		s, ok := v.(string)
		if ok && vc.fold {
			return jsLower(s) == vc.str
		}
		return ok && s == vc.str
	case valueNumber:
		f, ok := goNumber(v)
		return ok && f == vc.num
	case valueBool:
		b, ok := v.(bool)
		return ok && b == vc.b
	case valueNull:
		return v == nil
	case valueLiteral:
		return jsonEqual(v, vc.lit)
	}
	for i := range vc.ops {
		if !vc.ops[i].match(v, groups) {
			return false
		}
	}
	return true
}

func (o *op) match(actual any, groups SavedGroups) bool {
	switch o.code {
	case opEq:
		return o.scalar.strictEquals(actual)
	case opNe:
		return !o.scalar.strictEquals(actual)
	case opLt:
		c, ok := order(actual, &o.scalar)
		return ok && c < 0
	case opLte:
		c, ok := order(actual, &o.scalar)
		return ok && c <= 0
	case opGt:
		c, ok := order(actual, &o.scalar)
		return ok && c > 0
	case opGte:
		c, ok := order(actual, &o.scalar)
		return ok && c >= 0
	case opExists:
		return (actual != nil) == o.flag
	case opIn:
		return o.set.intersects(actual)
	case opNin:
		return !o.set.intersects(actual)
	case opInGroup:
		return inList(actual, groups[o.str])
	case opNotInGroup:
		return !inList(actual, groups[o.str])
	case opNot:
		return !o.sub.match(actual, groups)
	case opSize:
		n, ok := arrayLen(actual)
		if !ok {
			return false
		}
		if o.sub.kind == valueNumber {
			return float64(n) == o.sub.num
		}
		return o.sub.match(float64(n), groups)
	case opElemMatch:
		return o.elemMatch(actual, groups)
	case opAll:
		return o.allMatch(actual, groups)
	case opRegex:
		s, ok := actual.(string)
		return ok && o.re.MatchString(s)
	case opType:
		return typeName(actual) == o.str
	case opNever:
		return false
	}
	// Versions compare two strings or two numbers; any other attribute is no version,
	// so only $vne holds.
	if !sameKind(actual, o.scalar.kind) {
		return o.code == opVne
	}
	var buf [64]byte
	c := compareUTF16(appendPaddedVersion(buf[:0], actual), o.str)
	switch o.code {
	case opVeq:
		return c == 0
	case opVne:
		return c != 0
	case opVgt:
		return c > 0
	case opVgte:
		return c >= 0
	case opVlt:
		return c < 0
	default: // opVlte
		return c <= 0
	}
}

// elemMatch passes when some element that is not null matches; elements are tested as
// values against an operator object and as attribute objects against a condition.
func (o *op) elemMatch(actual any, groups SavedGroups) bool {
	test := func(e any) bool {
		if e == nil {
			return false
		}
		if o.elem != nil {
			return o.elem.match(e, groups)
		}
		return o.sub.match(e, groups)
	}
	switch a := actual.(type) {
	case []any:
		for _, e := range a {
			if test(e) {
				return true
			}
		}
	case []string:
		for _, e := range a {
			if test(e) {
				return true
			}
		}
	}
	return false
}

// allMatch passes when every expected value is matched by some element.
func (o *op) allMatch(actual any, groups SavedGroups) bool {
	n, ok := arrayLen(actual)
	if !ok {
		return false
	}
	for i := range o.all {
		found := false
		for j := 0; j < n && !found; j++ {
			found = o.all[i].match(arrayAt(actual, j), groups)
		}
		if !found {
			return false
		}
	}
	return true
}

// order compares actual with a relational operand when both are numbers or both are
// strings (strings by UTF-16 code units, as JavaScript does); ok is false for any other
// pair and when a number is NaN, where every comparison fails.
func order(actual any, e *scalar) (int, bool) {
	switch e.kind {
	case scalarString:
		s, ok := actual.(string)
		if !ok {
			return 0, false
		}
		return compareUTF16(s, e.str), true
	case scalarNumber:
		a, ok := goNumber(actual)
		switch {
		case !ok || a != a || e.num != e.num:
			return 0, false
		case a < e.num:
			return -1, true
		case a > e.num:
			return 1, true
		}
		return 0, true
	}
	return 0, false
}

// sameKind reports whether actual is a string or a number like a scalar of kind k.
func sameKind(actual any, k scalarKind) bool {
	if _, ok := actual.(string); ok {
		return k == scalarString
	}
	_, ok := goNumber(actual)
	return ok && k == scalarNumber
}

// strictEquals is JavaScript's ===. Arrays and objects compare by reference there, so
// they never equal a scalar, and an array or object operand equals nothing.
func (s *scalar) strictEquals(v any) bool {
	switch x := v.(type) {
	case string:
		return s.kind == scalarString && x == s.str
	case float64:
		return s.kind == scalarNumber && x == s.num
	case bool:
		return s.kind == scalarBool && x == s.b
	case nil:
		return s.kind == scalarNull
	}
	if f, ok := goNumber(v); ok {
		return s.kind == scalarNumber && f == s.num
	}
	return false
}

// intersects is GrowthBook's isIn: membership for a scalar, non-empty intersection for
// an array.
func (s *valueSet) intersects(actual any) bool {
	switch a := actual.(type) {
	case []any:
		for _, e := range a {
			if s.contains(e) {
				return true
			}
		}
		return false
	case []string:
		for _, e := range a {
			if s.containsString(e) {
				return true
			}
		}
		return false
	}
	return s.contains(actual)
}

func (s *valueSet) contains(v any) bool {
	switch x := v.(type) {
	case string:
		return s.containsString(x)
	case float64:
		return s.containsNumber(x)
	case bool:
		if x {
			return s.hasTrue
		}
		return s.hasFalse
	case nil:
		return s.null
	}
	if f, ok := goNumber(v); ok {
		return s.containsNumber(f)
	}
	return false
}

func (s *valueSet) containsString(x string) bool {
	if s.fold {
		var buf [64]byte
		if b, ok := appendASCIILower(buf[:0], x); ok {
			if s.strIndex != nil {
				_, found := s.strIndex[string(b)]
				return found
			}
			for _, v := range s.strs {
				if string(b) == v {
					return true
				}
			}
			return false
		}
		x = jsLower(x)
	}
	if s.strIndex != nil {
		_, found := s.strIndex[x]
		return found
	}
	for _, v := range s.strs {
		if x == v {
			return true
		}
	}
	return false
}

func (s *valueSet) containsNumber(f float64) bool {
	if s.numIndex != nil {
		_, found := s.numIndex[f]
		return found
	}
	for _, v := range s.nums {
		if f == v {
			return true
		}
	}
	return false
}

// inList is isIn against a saved group, whose members are only known at match time.
func inList(actual any, list []any) bool {
	if len(list) == 0 {
		return false
	}
	if n, ok := arrayLen(actual); ok {
		for i := 0; i < n; i++ {
			e := arrayAt(actual, i)
			for _, m := range list {
				if strictEqual(e, m) {
					return true
				}
			}
		}
		return false
	}
	for _, m := range list {
		if strictEqual(actual, m) {
			return true
		}
	}
	return false
}

func strictEqual(a, b any) bool {
	switch x := a.(type) {
	case string:
		y, ok := b.(string)
		return ok && x == y
	case bool:
		y, ok := b.(bool)
		return ok && x == y
	case nil:
		return b == nil
	}
	if fa, ok := goNumber(a); ok {
		fb, ok := goNumber(b)
		return ok && fa == fb
	}
	return false
}

func arrayLen(v any) (int, bool) {
	switch a := v.(type) {
	case []any:
		return len(a), true
	case []string:
		return len(a), true
	}
	return 0, false
}

func arrayAt(v any, i int) any {
	switch a := v.(type) {
	case []any:
		return a[i]
	case []string:
		return a[i]
	}
	return nil
}

func typeName(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case string:
		return "string"
	case bool:
		return "boolean"
	case []any, []string:
		return "array"
	case map[string]any, map[string]string:
		return "object"
	}
	if _, ok := goNumber(v); ok {
		return "number"
	}
	return "unknown"
}

// jsonEqual stands in for GrowthBook's JSON.stringify(a) === JSON.stringify(b). Go
// maps have no key order, so objects compare by content whatever the order of keys.
func jsonEqual(a, lit any) bool {
	switch l := lit.(type) {
	case nil:
		if a == nil {
			return true
		}
		// JSON.stringify writes NaN and ±Infinity as null.
		f, ok := goNumber(a)
		return ok && (f != f || f-f != 0)
	case string:
		x, ok := a.(string)
		return ok && x == l
	case bool:
		x, ok := a.(bool)
		return ok && x == l
	case float64:
		f, ok := goNumber(a)
		return ok && f == l
	case []any:
		n, ok := arrayLen(a)
		if !ok || n != len(l) {
			return false
		}
		for i := range l {
			if !jsonEqual(arrayAt(a, i), l[i]) {
				return false
			}
		}
		return true
	case map[string]any:
		switch m := a.(type) {
		case map[string]any:
			if len(m) != len(l) {
				return false
			}
			for k, lv := range l {
				v, ok := m[k]
				if !ok || !jsonEqual(v, lv) {
					return false
				}
			}
			return true
		case map[string]string:
			if len(m) != len(l) {
				return false
			}
			for k, lv := range l {
				v, ok := m[k]
				if !ok || !jsonEqual(v, lv) {
					return false
				}
			}
			return true
		}
	}
	return false
}

// goNumber reads any Go numeric type as float64, the only number JavaScript has.
func goNumber(v any) (float64, bool) {
	switch x := v.(type) {
	case float64:
		return x, true
	case int:
		return float64(x), true
	case int64:
		return float64(x), true
	case int32:
		return float64(x), true
	case int16:
		return float64(x), true
	case int8:
		return float64(x), true
	case uint:
		return float64(x), true
	case uint64:
		return float64(x), true
	case uint32:
		return float64(x), true
	case uint16:
		return float64(x), true
	case uint8:
		return float64(x), true
	case float32:
		return float64(x), true
	case json.Number:
		return stringToNumber(string(x)), true
	}
	return 0, false
}
