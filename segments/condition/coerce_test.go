package condition

import (
	"math"
	"testing"
)

// Expected values below come from node (String(n), Number(s), a < b).

func TestAppendJSNumber(t *testing.T) {
	tests := []struct {
		in   float64
		want string
	}{
		{0, "0"}, {math.Copysign(0, -1), "0"}, {1, "1"}, {-1, "-1"}, {0.1, "0.1"},
		{1e21, "1e+21"}, {1e20, "100000000000000000000"},
		{123456789012345680000, "123456789012345680000"},
		{1e-7, "1e-7"}, {1e-6, "0.000001"}, {0.000001234, "0.000001234"},
		{1.5e-10, "1.5e-10"}, {-2.5e30, "-2.5e+30"}, {5e-324, "5e-324"},
		{1.7976931348623157e308, "1.7976931348623157e+308"}, {123.456, "123.456"},
		{100, "100"}, {1.0 / 3, "0.3333333333333333"}, {1 << 53, "9007199254740992"},
		{-1e-7, "-1e-7"}, {12345678901234567890, "12345678901234567000"},
		{math.NaN(), "NaN"}, {math.Inf(1), "Infinity"}, {math.Inf(-1), "-Infinity"},
	}
	for _, tt := range tests {
		if got := string(appendJSNumber(nil, tt.in)); got != tt.want {
			t.Errorf("appendJSNumber(%v) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestStringToNumber(t *testing.T) {
	nan := math.NaN()
	tests := []struct {
		in   string
		want float64
	}{
		{"", 0}, {" ", 0}, {"12", 12}, {" 12 ", 12}, {"\t\n12\u00a0", 12}, {"1e3", 1000},
		{"1e", nan}, {".5", 0.5}, {"5.", 5}, {"+.5", 0.5}, {"-.5e-2", -0.005},
		{"0x1F", 31}, {"0X1f", 31}, {"-0x1F", nan}, {"0b101", 5}, {"0o17", 15},
		{"0o19", nan}, {"1_000", nan}, {"Infinity", math.Inf(1)},
		{"-Infinity", math.Inf(-1)}, {"+Infinity", math.Inf(1)}, {"infinity", nan},
		{"inf", nan}, {"NaN", nan}, {"abc", nan}, {"12abc", nan}, {"1e400", math.Inf(1)},
		{"0x", nan}, {"00012", 12}, {"+", nan}, {"-", nan}, {".", nan}, {"1.2.3", nan},
		{"\u2028 7 \ufeff", 7}, {"0xFFFFFFFFFFFFFFFFFF", 4.722366482869645e+21},
		{"0x1p4", nan},
	}
	for _, tt := range tests {
		got := stringToNumber(tt.in)
		if got != tt.want && !(math.IsNaN(got) && math.IsNaN(tt.want)) {
			t.Errorf("stringToNumber(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

func TestCompareUTF16(t *testing.T) {
	tests := []struct {
		a, b string
		want int
	}{
		{"", "", 0}, {"a", "b", -1}, {"b", "a", 1}, {"a", "ab", -1}, {"Z", "a", -1},
		{"é", "z", 1}, {"😀", "！", -1}, {"！", "😀", 1}, {"😀", "😁", -1},
		{"\uE000", "😀", 1}, {"\uD7FF", "😀", -1}, {"x😀", "x\uFFFF", -1},
	}
	for _, tt := range tests {
		if got := compareUTF16(tt.a, tt.b); got != tt.want {
			t.Errorf("compareUTF16(%q, %q) = %d, want %d", tt.a, tt.b, got, tt.want)
		}
		if got := compareUTF16([]byte(tt.a), tt.b); got != tt.want {
			t.Errorf("compareUTF16([]byte(%q), %q) = %d, want %d", tt.a, tt.b, got, tt.want)
		}
	}
}

func TestPaddedVersion(t *testing.T) {
	tests := []struct {
		in   any
		want string
	}{
		{"1.2.3", "    1-    2-    3-~"},
		{"v1.2.3-rc.1+build123", "    1-    2-    3-rc-    1"},
		{"1.0.0-1.-1", "    1-    0-    0-    1--    1"},
		{"10000.0.0", "10000-    0-    0-~"},
		{"123456.0.0", "123456-    0-    0-~"},
		{"1-2-3", "    1-    2-    3-~"},
		{"", "    0"},
		{nil, "    0"},
		{true, "    0"},
		{2.0, "    2"},
		{1.5, "    1-    5"},
		// JavaScript's /\+.*$/ does not cross a line break.
		{"1.2.3+a\nb", "    1-    2-3+a\nb-~"},
		{"1+a\n2+b", "1+a\n2"},
		{"+1", ""},
	}
	for _, tt := range tests {
		if got := string(appendPaddedVersion(nil, tt.in)); got != tt.want {
			t.Errorf("appendPaddedVersion(%#v) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
