package config

import (
	"fmt"
	"net"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// The bounds of what an error line shows.
const (
	// maxValue is how many bytes of a value an error quotes; a longer value
	// is cut and marked with "...".
	maxValue = 64
	// maxPathShown is how many bytes of the YAML file's path an error shows.
	maxPathShown = 128
	// MaxErrorLine is the longest line an error of Load has, in bytes.
	MaxErrorLine = 512
)

// lineError is one configuration error: one line, wrapping ErrInvalid.
type lineError struct{ msg string }

func (e *lineError) Error() string { return e.msg }

func (e *lineError) Unwrap() error { return ErrInvalid }

// shortenQuoted cuts every string argument that format prints with %q to
// maxValue bytes, so that an error line never echoes a huge value whole.
func shortenQuoted(format string, args []any) []any {
	out := append([]any(nil), args...)
	n := 0
	for i := 0; i < len(format); i++ {
		if format[i] != '%' {
			continue
		}
		i++
		for i < len(format) && strings.IndexByte("+-# 0123456789.", format[i]) >= 0 {
			i++
		}
		if i >= len(format) || format[i] == '%' {
			continue
		}
		if format[i] == 'q' && n < len(out) {
			if s, ok := out[n].(string); ok {
				out[n] = shorten(s, maxValue)
			}
		}
		n++
	}
	return out
}

// shorten cuts s to at most max bytes on a character boundary, marking the
// cut with "...".
func shorten(s string, max int) string {
	if len(s) <= max {
		return s
	}
	cut := max
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "..."
}

// shortPath is path as error messages show it: cut to maxPathShown bytes,
// quoted when it holds characters that are not printable.
func shortPath(path string) string {
	p := shorten(path, maxPathShown)
	if !printable(p) {
		return strconv.Quote(p)
	}
	return p
}

// oneLine escapes what would break a line (newlines, other control
// characters, invalid UTF-8) and bounds the line to MaxErrorLine bytes.
func oneLine(s string) string {
	if !printable(s) {
		var b strings.Builder
		for i, r := range s {
			switch {
			case r == utf8.RuneError && !strings.HasPrefix(s[i:], "\uFFFD"):
				fmt.Fprintf(&b, `\x%02x`, s[i])
			case r < 0x20 || r == 0x7f || !unicode.IsPrint(r) && r != ' ':
				q := strconv.QuoteRune(r)
				b.WriteString(q[1 : len(q)-1])
			default:
				b.WriteRune(r)
			}
		}
		s = b.String()
	}
	return shorten(s, MaxErrorLine-len(ErrInvalid.Error())-len(": ")-len("..."))
}

// printable reports whether s is valid UTF-8 made of printable characters
// and spaces only.
func printable(s string) bool {
	for _, r := range s {
		if r == utf8.RuneError || r != ' ' && !unicode.IsPrint(r) {
			return false
		}
	}
	return true
}

// validHost reports whether s is an IP address or a DNS host name (labels of
// letters, digits, '-' and '_', at most 253 bytes).
func validHost(s string) bool {
	if net.ParseIP(s) != nil {
		return true
	}
	if len(s) == 0 || len(s) > 253 {
		return false
	}
	for _, label := range strings.Split(strings.TrimSuffix(s, "."), ".") {
		if len(label) == 0 || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}
