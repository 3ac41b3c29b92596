package coordinator_test

import (
	"strings"
	"testing"

	"github.com/ccctl/ccctl/coordinator"
)

func TestValidateName(t *testing.T) {
	for _, tc := range []struct {
		name string
		ok   bool
	}{
		{"a", true},
		{"Z9", true},
		{"web-1.eu_west", true},
		{"0", true},
		{strings.Repeat("a", 128), true},
		{"", false},
		{strings.Repeat("a", 129), false},
		{"-a", false},
		{".a", false},
		{"_a", false},
		{"a/b", false},
		{"a b", false},
		{"é", false},
		{"a\x00", false},
	} {
		err := coordinator.ValidateName("service", tc.name)
		if (err == nil) != tc.ok {
			t.Errorf("ValidateName(%q) = %v; want ok=%v", tc.name, err, tc.ok)
		}
		if err != nil && !strings.Contains(err.Error(), "service") {
			t.Errorf("ValidateName(%q) = %q; want the error to name the setting", tc.name, err)
		}
	}
}
