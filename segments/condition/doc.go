// Package condition is GrowthBook's MongoDB-style condition language, which lift uses
// for experiment targeting, flag rules, attribute segments and the where clauses of
// behavioural rules (docs/api.md, "Bucketing and conditions").
//
// ParseCondition and ParseConditionJSON compile a condition once; Condition.Match
// then evaluates it against a user's attributes and saved groups, safe for concurrent
// use and without allocating. Where GrowthBook evaluates a malformed condition to
// false, the parser refuses it with a *ConditionError naming the path the way the
// client wrote it ("country.$inn"), so a bad condition is caught when it is saved
// rather than silently matching nobody. Evaluation follows GrowthBook's SDKs and is
// checked against GrowthBook's own test cases (conformance_test.go).
//
// It imports only the standard library, so the segment engine and the decision path
// can both use it.
package condition
