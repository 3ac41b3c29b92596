package etcd

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/ccctl/ccctl/clock"
	"github.com/ccctl/ccctl/coordinator"
)

// Defaults and limits of Config.
const (
	DefaultPrefix      = "/ccctl"
	DefaultTTL         = 10 * time.Second
	MinTTL             = coordinator.MinTTL
	DefaultDialTimeout = 5 * time.Second
	// ReconnectMaxDelay is the longest pause between two attempts to
	// reconnect to an etcd endpoint that is gone: a session is renewed at
	// most this long (and a round trip) after etcd answers again.
	ReconnectMaxDelay = 500 * time.Millisecond
	// minMargin is the smallest default margin.
	minMargin = 200 * time.Millisecond
)

// Config configures a Coordinator. The connection fields (Endpoints to
// Password) are what NewClient uses; NewWithClient ignores them.
type Config struct {
	// Endpoints are etcd's client URLs (http://host:2379, https://...); a
	// bare host:port means http.
	Endpoints []string
	// DialTimeout bounds the connection and the first request (default 5s).
	DialTimeout time.Duration
	// CACert, Cert and Key are PEM file paths, with etcdctl's meanings
	// (--cacert, --cert, --key). Any of them turns TLS on.
	CACert, Cert, Key string
	// Username and Password authenticate to etcd (etcdctl's --user).
	Username, Password string

	// Prefix is the root of ccctl's keys (default /ccctl).
	Prefix string
	// Cluster names this member's cluster.
	Cluster coordinator.Cluster
	// ID is this member's id.
	ID string
	// PreviousLease is the lease of this process's own earlier session, if
	// it had one: a record bound to it is taken over at once (see New).
	PreviousLease clientv3.LeaseID
	// TTL is the session lease's time to live: whole seconds, at least 2s
	// (default 10s).
	TTL time.Duration
	// RenewInterval is the time between keep-alive requests (default
	// TTL/5). An outage of etcd shorter than TTL - Margin - RenewInterval
	// (7 s at TTL 10 s) loses no session wherever it falls between two
	// renewals, since a renewal goes out as soon as etcd answers again.
	RenewInterval time.Duration
	// Margin is how long before the lease could expire on the server the
	// session is given up for lack of renewal (default TTL/10, at least
	// 200ms).
	Margin time.Duration
	// Logger receives one line per event, with the member id (default
	// slog.Default()).
	Logger *slog.Logger
	// Clock drives renewals, the session's deadline, retry pauses and the
	// delay before a campaign's attempt (default clock.Real(), whose
	// readings are monotonic).
	Clock clock.Clock
	// HistorySize is how many master terms the history keeps: this
	// member trims it when its term begins (default
	// coordinator.DefaultHistorySize).
	HistorySize int
	// Ranking is this member's priority and how it ranks the others at a
	// vacancy (coordinator.Ranking; the zero value: priority 1, no lag
	// limit, the default failover wait).
	Ranking coordinator.Ranking
}

func invalid(format string, args ...any) error {
	return fmt.Errorf("etcd config: %s: %w", fmt.Sprintf(format, args...), coordinator.ErrInvalidConfig)
}

// withDefaults returns cfg with defaults applied and checks everything but
// the connection fields.
func (cfg Config) withDefaults() (Config, error) {
	prefix, err := cleanPrefix(cfg.Prefix)
	if err != nil {
		return cfg, err
	}
	cfg.Prefix = prefix
	if err := cfg.Cluster.Validate(); err != nil {
		return cfg, invalid("%v", err)
	}
	if err := coordinator.ValidateName("member id", cfg.ID); err != nil {
		return cfg, invalid("%v", err)
	}
	if cfg.TTL == 0 {
		cfg.TTL = DefaultTTL
	}
	if err := coordinator.CheckTTL(cfg.TTL); err != nil {
		return cfg, invalid("%v", err)
	}
	if cfg.RenewInterval == 0 {
		cfg.RenewInterval = cfg.TTL / 5
	}
	if cfg.RenewInterval < 0 {
		return cfg, invalid("renew interval %v: want > 0", cfg.RenewInterval)
	}
	if cfg.Margin == 0 {
		cfg.Margin = max(cfg.TTL/10, minMargin)
	}
	if cfg.Margin < 0 {
		return cfg, invalid("margin %v: want > 0", cfg.Margin)
	}
	if 2*cfg.RenewInterval+cfg.Margin >= cfg.TTL {
		return cfg, invalid("ttl %v, renew interval %v, margin %v: want ttl > 2 * renew interval + margin, so that one lost renewal does not end the session",
			cfg.TTL, cfg.RenewInterval, cfg.Margin)
	}
	if cfg.DialTimeout == 0 {
		cfg.DialTimeout = DefaultDialTimeout
	}
	if cfg.DialTimeout < 0 {
		return cfg, invalid("dial timeout %v: want > 0", cfg.DialTimeout)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.Real()
	}
	if r := cfg.Ranking; r.Priority > coordinator.MaxPriority || r.Priority < coordinator.NeverLead {
		return cfg, invalid("priority %d: want 1 to %d (0: the default, 1; coordinator.NeverLead: priority 0)", r.Priority, coordinator.MaxPriority)
	}
	if cfg.Ranking.MaxLag < 0 {
		return cfg, invalid("maximum lag %d: want >= 0 (0: no limit)", cfg.Ranking.MaxLag)
	}
	if cfg.Ranking.FailoverWait < 0 {
		return cfg, invalid("failover wait %v: want >= 0 (0: a quarter of the ttl)", cfg.Ranking.FailoverWait)
	}
	if cfg.HistorySize == 0 {
		cfg.HistorySize = coordinator.DefaultHistorySize
	}
	if cfg.HistorySize < 0 || cfg.HistorySize > coordinator.MaxHistorySize {
		return cfg, invalid("history size %d: want 1 to %d", cfg.HistorySize, coordinator.MaxHistorySize)
	}
	return cfg, nil
}

// clientConfig checks the connection fields and returns the client's
// configuration.
func (cfg Config) clientConfig() (clientv3.Config, error) {
	if cfg.DialTimeout == 0 {
		cfg.DialTimeout = DefaultDialTimeout
	}
	if cfg.DialTimeout < 0 {
		return clientv3.Config{}, invalid("dial timeout %v: want > 0", cfg.DialTimeout)
	}
	if len(cfg.Endpoints) == 0 {
		return clientv3.Config{}, invalid("no endpoints")
	}
	secure := cfg.CACert != "" || cfg.Cert != "" || cfg.Key != ""
	eps := make([]string, len(cfg.Endpoints))
	for i, ep := range cfg.Endpoints {
		ep, err := ParseEndpoint(ep)
		if err != nil {
			return clientv3.Config{}, invalid("endpoint %q: %v", cfg.Endpoints[i], err)
		}
		if strings.HasPrefix(ep, "https://") {
			secure = true
		}
		eps[i] = ep
	}
	if (cfg.Cert == "") != (cfg.Key == "") {
		return clientv3.Config{}, invalid("cert and key: want both or neither")
	}
	if cfg.Password != "" && cfg.Username == "" {
		return clientv3.Config{}, invalid("password without username")
	}
	cc := clientv3.Config{
		Endpoints:            eps,
		DialTimeout:          cfg.DialTimeout,
		DialKeepAliveTime:    10 * time.Second,
		DialKeepAliveTimeout: 5 * time.Second,
		Username:             cfg.Username,
		Password:             cfg.Password,
		Logger:               zap.NewNop(),
		// gRPC's own reconnection backoff grows to 2 minutes: after an
		// outage a member would reconnect long after etcd came back, and
		// the session's renewal with it (see keepAlive).
		DialOptions: []grpc.DialOption{grpc.WithConnectParams(grpc.ConnectParams{
			Backoff:           backoff.Config{BaseDelay: 100 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: ReconnectMaxDelay},
			MinConnectTimeout: DefaultDialTimeout,
		})},
	}
	if secure {
		var tc *tls.Config
		if cfg.Cert != "" || cfg.CACert != "" {
			var err error
			if tc, err = tlsConfig(cfg.CACert, cfg.Cert, cfg.Key); err != nil {
				return clientv3.Config{}, invalid("tls: %v", err)
			}
		} else {
			tc = &tls.Config{MinVersion: tls.VersionTLS12}
		}
		cc.TLS = tc
	}
	return cc, nil
}

// NewClient returns a client of the etcd that cfg's connection fields
// describe, once it has answered a read of the keys under Prefix + "/"
// (what a role granted readwrite --prefix <prefix>/ may read) within
// DialTimeout or before ctx is done, whichever comes first; the token
// request of a user name and password counts in that time too.
//
// An error is one line that names the endpoints and the cause. It wraps
// coordinator.ErrInvalidConfig for what the user must fix: a bad setting,
// a failed authentication, a permission denied, a TLS failure (an unknown
// certificate authority, a certificate etcd refused or did not get,
// http:// against a TLS endpoint or https:// against a plain one). It wraps
// coordinator.ErrUnavailable for what may come back: a connection refused,
// a host name not found (a container's name resolves only once it runs),
// no answer in time, etcd without a leader. The caller closes the client.
func NewClient(ctx context.Context, cfg Config) (*clientv3.Client, error) {
	cc, err := cfg.clientConfig()
	if err != nil {
		return nil, err
	}
	prefix := cfg.Prefix
	if prefix == "" {
		prefix = DefaultPrefix
	}
	actx, cancel := context.WithTimeout(ctx, cc.DialTimeout)
	defer cancel()
	start := time.Now()
	// The diagnosis runs beside the first request, so that its cause is
	// known when the request times out, and a definite one (refused, TLS)
	// ends the attempt at once.
	diag := startDiagnosis(actx, cc, cancel)
	defer diag.stop()

	// The client's context outlives this call; the attempt's deadline
	// cancels it only while clientv3.New runs (its token request is
	// bounded by DialTimeout alone, not by ctx).
	life, endLife := context.WithCancel(context.WithoutCancel(ctx))
	cc.Context = life
	unbind := context.AfterFunc(actx, endLife)
	cli, err := clientv3.New(cc)
	if !unbind() && err == nil {
		err = actx.Err()
		cli.Close()
		cli = nil
	}
	if err == nil {
		_, err = cli.Get(actx, prefix+"/", clientv3.WithPrefix(), clientv3.WithKeysOnly(), clientv3.WithLimit(1))
		if err != nil {
			cli.Close()
		}
	}
	if err != nil {
		endLife()
		return nil, connectError(cc.Endpoints, cfg.Username, prefix, err, diag.result(), time.Since(start))
	}
	return cli, nil
}

// connectError classifies err, the failure of a first request, with the
// causes the diagnosis found for each endpoint (nil when it found none).
func connectError(endpoints []string, user, prefix string, err error, causes []error, took time.Duration) error {
	at := strings.Join(endpoints, ",")
	if cause, permanent := etcdCause(err, user, prefix); cause != "" {
		sentinel := coordinator.ErrUnavailable
		if permanent {
			sentinel = coordinator.ErrInvalidConfig
		}
		return fmt.Errorf("connect to etcd at %s: %s: %w", at, cause, sentinel)
	}
	var named []string
	permanent := true
	for i, c := range causes {
		if c == nil {
			permanent = false
			continue
		}
		var ce *causeError
		if !errors.As(c, &ce) || !ce.permanent {
			permanent = false
		}
		if len(endpoints) > 1 {
			named = append(named, endpoints[i]+": "+c.Error())
		} else {
			named = append(named, c.Error())
		}
	}
	if len(named) == 0 {
		return fmt.Errorf("connect to etcd at %s: %s: %w", at, answerCause(err, took), coordinator.ErrUnavailable)
	}
	if permanent {
		return fmt.Errorf("connect to etcd at %s: %s: %w", at, strings.Join(named, "; "), coordinator.ErrInvalidConfig)
	}
	return fmt.Errorf("connect to etcd at %s: %s: %w", at, strings.Join(named, "; "), coordinator.ErrUnavailable)
}

// etcdCause names what etcd itself answered, if err is such an answer, and
// whether the user must fix it.
func etcdCause(err error, user, prefix string) (cause string, permanent bool) {
	switch {
	case errors.Is(err, rpctypes.ErrAuthFailed):
		return fmt.Sprintf("authentication failed for user %q: check the user name and password", user), true
	case errors.Is(err, rpctypes.ErrUserEmpty):
		return "authentication required: etcd has authentication on; set a user name and password", true
	case errors.Is(err, rpctypes.ErrPermissionDenied):
		who := "this client"
		if user != "" {
			who = fmt.Sprintf("user %q", user)
		}
		return fmt.Sprintf("permission denied: %s may not read %s/; grant its role readwrite --prefix %s/", who, prefix, prefix), true
	case errors.Is(err, rpctypes.ErrNoLeader), errors.Is(err, rpctypes.ErrLeaderChanged),
		errors.Is(err, rpctypes.ErrTimeout), errors.Is(err, rpctypes.ErrTimeoutDueToLeaderFail):
		return "etcd has no leader: " + rpctypes.ErrorDesc(err), false
	}
	return "", false
}

// answerCause describes a first request that failed with no cause found on
// the way to etcd.
func answerCause(err error, took time.Duration) string {
	if errors.Is(err, context.DeadlineExceeded) || status.Code(err) == codes.DeadlineExceeded {
		return fmt.Sprintf("no answer within %v", took.Round(100*time.Millisecond))
	}
	if errors.Is(err, context.Canceled) || status.Code(err) == codes.Canceled {
		return "cancelled"
	}
	return oneLine(rpctypes.ErrorDesc(err))
}

func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

// unavailable wraps err, a failed request to etcd at endpoints, naming its
// cause: an authentication or permission failure wraps
// coordinator.ErrInvalidConfig (the user must fix it), anything else
// coordinator.ErrUnavailable.
func unavailable(endpoints []string, err error) error {
	at := strings.Join(endpoints, ",")
	if _, permanent := etcdCause(err, "", DefaultPrefix); permanent {
		return fmt.Errorf("connect to etcd at %s: %s: %w", at, oneLine(rpctypes.ErrorDesc(err)), coordinator.ErrInvalidConfig)
	}
	if errors.Is(err, context.DeadlineExceeded) {
		err = errors.New("no answer in time")
	}
	return fmt.Errorf("connect to etcd at %s: %v: %w", at, err, coordinator.ErrUnavailable)
}
