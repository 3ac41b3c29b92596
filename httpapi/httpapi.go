// Package httpapi is the HTTP server of a ccctl member: /health, /master and
// /slave for health checks and load balancers (200 or 503, like Patroni's),
// /status (the member's status as JSON), /metrics (Prometheus), /history
// (the cluster's master terms as JSON), /cluster (its members as JSON) and
// / (a live page of the cluster, one embedded file, see page.go).
//
// The server only reads: it has no endpoint that changes the cluster. It is
// started as one actor of the controller (Execute and Interrupt) and binds
// its address in New, so that an address in use is reported before anything
// starts. What it does not do: authentication or TLS; bind it to an address
// only trusted clients reach.
//
// Nothing a client does can wedge it: every request must be read within
// ReadTimeout (headers within 5s) and answered within WriteTimeout, an idle
// keep-alive connection is closed after IdleTimeout, and at most
// MaxConnections connections are open at once. When the bound is reached a
// new connection replaces the oldest one that is waiting for a request (see
// connLimiter), so /health keeps answering however many idle or silent
// connections a client opens.
package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/ccctl/ccctl/coordinator"
)

// Status is what the server needs to know about the member.
type Status struct {
	// Role and State are the member's.
	Role  coordinator.Role
	State coordinator.State
	// Body is served as JSON by /status.
	Body any
}

// Healthy reports whether a member in this status is healthy: its service
// is running (state running or active).
func (s Status) Healthy() bool {
	return s.State == coordinator.StateRunning || s.State == coordinator.StateActive
}

// Config configures a Server.
type Config struct {
	// Address is the listen address, such as ":8008" or "127.0.0.1:0".
	Address string
	// Status returns the member's current status; it is called on every
	// request and must be safe for concurrent use. Required.
	Status func() Status
	// Gatherer is served by /metrics (prometheus.DefaultGatherer when nil).
	Gatherer prometheus.Gatherer
	// Logger logs the server's start and failures (slog.Default() when nil).
	Logger *slog.Logger
	// History returns the cluster's last limit master terms, oldest first
	// (all kept when limit <= 0), for /history and the page. Nil: /history
	// answers 404.
	History func(ctx context.Context, limit int) ([]coordinator.Term, error)
	// Cluster returns the cluster's members as JSON-encodable data, for
	// /cluster and the page. Nil: /cluster answers 404.
	Cluster func(ctx context.Context) (any, error)

	// MaxConnections bounds the open connections (DefaultMaxConnections
	// when 0).
	MaxConnections int
	// ReadTimeout bounds the reading of a whole request, body included
	// (DefaultReadTimeout when 0).
	ReadTimeout time.Duration
	// WriteTimeout bounds the time from the end of a request's headers to
	// the end of its response (DefaultWriteTimeout when 0).
	WriteTimeout time.Duration
	// IdleTimeout closes a keep-alive connection that waits longer than
	// this for its next request (DefaultIdleTimeout when 0).
	IdleTimeout time.Duration
}

// The defaults of Config's bounds.
const (
	// DefaultMaxConnections leaves room for many scrapers, load balancers
	// and pages, and stays far below any usual limit of open files.
	DefaultMaxConnections = 512
	// DefaultReadTimeout: the server's requests have no body, so a request
	// that takes longer to arrive is not a real client.
	DefaultReadTimeout = 10 * time.Second
	// DefaultWriteTimeout is long enough for the largest responses,
	// /metrics and the page (tens of kilobytes), to reach a slow client,
	// and for /history and /cluster, whose backend reads are bounded to
	// 5s; it is also longer than Prometheus's default scrape timeout (10s).
	DefaultWriteTimeout = 30 * time.Second
	// DefaultIdleTimeout outlasts the usual scrape and health-check
	// intervals, so those reuse their connection.
	DefaultIdleTimeout = 60 * time.Second
	// metricsInFlight bounds the /metrics requests served at once; more
	// are answered 503 at once. A Prometheus server scrapes a target one
	// request at a time, so this leaves room for several, while clients
	// that hammer /metrics cannot take the CPU that /health needs.
	metricsInFlight = 4
	// readHeaderTimeout bounds the reading of a request's headers.
	readHeaderTimeout = 5 * time.Second
)

// Server is the member's HTTP server.
type Server struct {
	ln     *connLimiter
	srv    *http.Server
	logger *slog.Logger
}

// New validates cfg and binds the address; Execute then serves.
func New(cfg Config) (*Server, error) {
	if cfg.Status == nil {
		return nil, errors.New("new http server: status function is required")
	}
	if cfg.Gatherer == nil {
		cfg.Gatherer = prometheus.DefaultGatherer
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.MaxConnections < 0 || cfg.ReadTimeout < 0 || cfg.WriteTimeout < 0 || cfg.IdleTimeout < 0 {
		return nil, errors.New("new http server: connection bound and timeouts must not be negative")
	}
	cfg.MaxConnections = orDefault(cfg.MaxConnections, DefaultMaxConnections)
	cfg.ReadTimeout = orDefault(cfg.ReadTimeout, DefaultReadTimeout)
	cfg.WriteTimeout = orDefault(cfg.WriteTimeout, DefaultWriteTimeout)
	cfg.IdleTimeout = orDefault(cfg.IdleTimeout, DefaultIdleTimeout)
	ln, err := net.Listen("tcp", cfg.Address)
	if err != nil {
		return nil, fmt.Errorf("new http server: %w", err)
	}
	s := &Server{ln: newConnLimiter(ln, cfg.MaxConnections, cfg.Logger), logger: cfg.Logger}
	s.srv = &http.Server{
		Handler:           routes(cfg),
		ReadHeaderTimeout: min(readHeaderTimeout, cfg.ReadTimeout),
		ReadTimeout:       cfg.ReadTimeout,
		WriteTimeout:      cfg.WriteTimeout,
		IdleTimeout:       cfg.IdleTimeout,
		ConnState:         s.ln.connState,
		ErrorLog:          slog.NewLogLogger(cfg.Logger.Handler(), slog.LevelWarn),
	}
	return s, nil
}

func orDefault[T int | time.Duration](v, def T) T {
	if v == 0 {
		return def
	}
	return v
}

// Addr returns the address the server listens on.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// Execute serves until Interrupt is called; it then returns nil. Any other
// end is returned as an error.
func (s *Server) Execute() error {
	s.logger.Info("http server listening", "address", s.ln.Addr().String())
	err := s.srv.Serve(s.ln)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return fmt.Errorf("serve http: %w", err)
}

// Interrupt stops the server: it stops accepting, lets requests in flight
// finish for up to a second, then closes what is left. It is safe to call
// more than once, and before or after Execute returned.
func (s *Server) Interrupt(error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := s.srv.Shutdown(ctx); err != nil {
		s.srv.Close()
	}
	s.ln.Close()
}

// Handler returns the server's routes for a member's status and metrics,
// for embedding in another server (without /history, /cluster and the
// page's data: see New's Config).
func Handler(status func() Status, gatherer prometheus.Gatherer) http.Handler {
	return routes(Config{Status: status, Gatherer: gatherer})
}

// routes returns the server's routes for cfg.
func routes(cfg Config) http.Handler {
	status, gatherer := cfg.Status, cfg.Gatherer
	if gatherer == nil {
		gatherer = prometheus.DefaultGatherer
	}
	mux := http.NewServeMux()
	check := func(ok func(Status) bool) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			st := status()
			code := http.StatusOK
			if !ok(st) {
				code = http.StatusServiceUnavailable
			}
			writeJSON(w, r, code, map[string]any{"role": st.Role, "state": st.State})
		}
	}
	mux.HandleFunc("GET /health", check(Status.Healthy))
	mux.HandleFunc("GET /master", check(func(s Status) bool { return s.Healthy() && s.Role == coordinator.RoleMaster }))
	mux.HandleFunc("GET /slave", check(func(s Status) bool { return s.Healthy() && s.Role == coordinator.RoleSlave }))
	mux.HandleFunc("GET /status", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, r, http.StatusOK, status().Body)
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(gatherer, promhttp.HandlerOpts{MaxRequestsInFlight: metricsInFlight}))
	pageRoutes(mux, cfg)
	return mux
}

func writeJSON(w http.ResponseWriter, r *http.Request, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	if r.Method == http.MethodHead {
		return
	}
	json.NewEncoder(w).Encode(v)
}
