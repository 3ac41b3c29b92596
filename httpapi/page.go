package httpapi

import (
	"context"
	_ "embed"
	"net/http"
	"strconv"
	"time"
)

// page is the live page of the cluster served at /: one HTML file with its
// CSS and JavaScript inline, no external assets and no build step. It
// only reads (GET /status, /cluster and /history, every two seconds) and
// has no control that changes anything.
//
//go:embed page.html
var page []byte

// readTimeout bounds the backend reads behind /history and /cluster.
const readTimeout = 5 * time.Second

// pageRoutes adds the page and the JSON it reads to mux.
func pageRoutes(mux *http.ServeMux, cfg Config) {
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Type", "text/html; charset=utf-8")
		// The page loads nothing from elsewhere, and may not.
		h.Set("Content-Security-Policy", "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; img-src data:")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Cache-Control", "no-cache")
		if r.Method != http.MethodHead {
			w.Write(page)
		}
	})
	mux.HandleFunc("GET /history", func(w http.ResponseWriter, r *http.Request) {
		if cfg.History == nil {
			http.NotFound(w, r)
			return
		}
		limit := 0
		if s := r.URL.Query().Get("limit"); s != "" {
			n, err := strconv.Atoi(s)
			if err != nil || n < 0 {
				writeJSON(w, r, http.StatusBadRequest, map[string]string{"error": "limit " + strconv.Quote(s) + ": want a whole number, 0 or more"})
				return
			}
			limit = n
		}
		ctx, cancel := context.WithTimeout(r.Context(), readTimeout)
		defer cancel()
		terms, err := cfg.History(ctx, limit)
		if err != nil {
			writeJSON(w, r, http.StatusServiceUnavailable, map[string]string{"error": err.Error()})
			return
		}
		if terms == nil {
			writeJSON(w, r, http.StatusOK, []any{})
			return
		}
		writeJSON(w, r, http.StatusOK, terms)
	})
	mux.HandleFunc("GET /cluster", func(w http.ResponseWriter, r *http.Request) {
		if cfg.Cluster == nil {
			http.NotFound(w, r)
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), readTimeout)
		defer cancel()
		v, err := cfg.Cluster(ctx)
		if err != nil {
			writeJSON(w, r, http.StatusServiceUnavailable, map[string]string{"error": err.Error()})
			return
		}
		writeJSON(w, r, http.StatusOK, v)
	})
}
