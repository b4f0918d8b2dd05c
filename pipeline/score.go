package pipeline

import (
	"fmt"
	"math"
	"strconv"
)

// AppendScore appends a sorted-set score in the shortest form that parses
// back to the same float64; infinities are "inf" and "-inf" as in Redis.
func AppendScore(dst []byte, f float64) []byte {
	switch {
	case math.IsInf(f, 1):
		return append(dst, "inf"...)
	case math.IsInf(f, -1):
		return append(dst, "-inf"...)
	}
	return strconv.AppendFloat(dst, f, 'g', -1, 64)
}

// ParseScore is the inverse of AppendScore; it also reads Redis' own
// spellings ("+inf", "inf", "-inf").
func ParseScore(s string) (float64, error) {
	switch s {
	case "inf", "+inf", "Inf", "+Inf":
		return math.Inf(1), nil
	case "-inf", "-Inf":
		return math.Inf(-1), nil
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, fmt.Errorf("score %q is not a number", s)
	}
	return f, nil
}
