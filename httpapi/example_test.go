package httpapi_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ccctl/ccctl/coordinator"
	"github.com/ccctl/ccctl/httpapi"
)

// A load balancer sends writes to the member whose /master answers 200.
func ExampleHandler() {
	status := func() httpapi.Status {
		return httpapi.Status{Role: coordinator.RoleMaster, State: coordinator.StateActive, Body: map[string]string{"id": "m1"}}
	}
	srv := httptest.NewServer(httpapi.Handler(status, prometheus.NewRegistry()))
	defer srv.Close()
	for _, path := range []string{"/health", "/master", "/slave"} {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			fmt.Println(path, err)
			continue
		}
		resp.Body.Close()
		fmt.Println(path, resp.StatusCode)
	}
	// Output:
	// /health 200
	// /master 200
	// /slave 503
}
