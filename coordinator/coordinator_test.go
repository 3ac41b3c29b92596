package coordinator_test

import (
	"fmt"
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

func TestMemberValidate(t *testing.T) {
	for _, tc := range []struct {
		m  coordinator.Member
		ok bool
	}{
		{coordinator.Member{ID: "web1", Role: coordinator.RoleMaster, State: coordinator.StateActive}, true},
		{coordinator.Member{ID: "web1"}, true},
		{coordinator.Member{ID: "../../x", Role: coordinator.RoleMaster}, false},
		{coordinator.Member{ID: ""}, false},
		{coordinator.Member{ID: "web1", Role: "king"}, false},
		{coordinator.Member{ID: "web1", State: "dancing"}, false},
	} {
		if err := tc.m.Validate(); (err == nil) != tc.ok {
			t.Errorf("%+v.Validate() = %v; want ok=%v", tc.m, err, tc.ok)
		}
	}
	err := coordinator.ValidateName("member id", strings.Repeat("x/", 1<<20))
	if err == nil || len(err.Error()) > 300 {
		t.Errorf("ValidateName of a 2 MB name: got an error of %d bytes; want a short one", len(fmt.Sprint(err)))
	}
}
