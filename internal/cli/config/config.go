package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"
	"github.com/spf13/viper"
	"go.yaml.in/yaml/v3"

	"github.com/ccctl/ccctl/backends/etcd"
	"github.com/ccctl/ccctl/coordinator"
	"github.com/ccctl/ccctl/internal/sys/smallfile"
	"github.com/ccctl/ccctl/lifecycle"
	"github.com/ccctl/ccctl/retention"
	"github.com/ccctl/ccctl/schedule"
)

// MinTTL is the shortest session TTL accepted: the backends' own.
const MinTTL = coordinator.MinTTL

// MaxTTL is the longest session TTL accepted: a crashed master is replaced
// within about the TTL, so anything longer is a mistake.
const MaxTTL = time.Hour

// MaxDuration is the longest value accepted by every other duration setting.
const MaxDuration = 365 * 24 * time.Hour

// maxErrors is how many errors Load reports; the rest are counted in one
// last line.
const maxErrors = 50

// Config is the validated configuration of one invocation.
type Config struct {
	// File is the path of the YAML file read, "" when none.
	File string
	// Etcd is how to reach etcd; Etcd.Endpoints is empty when no etcd is
	// configured (the memory backend is then used).
	Etcd Etcd
	// Cluster names the member's cluster.
	Cluster coordinator.Cluster
	// InstanceID is the member's id.
	InstanceID string
	// AdvertiseAddress is the address other members use to reach this one,
	// "" to let the backend find it.
	AdvertiseAddress string
	// TTL is the session lease's TTL.
	TTL time.Duration
	// HistorySize is how many master terms the history keeps.
	HistorySize int
	// GracePeriod is the time between SIGTERM and SIGKILL.
	GracePeriod time.Duration
	// LeadershipLostAction is what a master does when its leadership is
	// lost, as lifecycle takes it.
	LeadershipLostAction lifecycle.LeadershipLostAction
	// Priority is this member's priority at a vacancy, 0 to
	// coordinator.MaxPriority; 0 never leads (see Ranking).
	Priority int
	// PositionCommand is the shell command that prints this member's
	// replication position, "" when none.
	PositionCommand string
	// PositionInterval is how often PositionCommand runs.
	PositionInterval time.Duration
	// PositionTimeout bounds one run of PositionCommand.
	PositionTimeout time.Duration
	// MaximumLag is how far behind the reference position a member may be
	// and still take over at a crash; 0 means no limit.
	MaximumLag int64
	// FailoverWait is how long an eligible member that is not the best
	// candidate waits for the best one at a vacancy.
	FailoverWait time.Duration
	// PortsWhenActive are the ports that must accept connections before
	// the member is active.
	PortsWhenActive []int
	// TerminateWhenNoLongerActive stops the container when an active
	// service stops answering.
	TerminateWhenNoLongerActive bool
	// HTTPAddress is the HTTP server's address, "" when off.
	HTTPAddress string
	// HTTPMaxConnections bounds the HTTP server's open connections.
	HTTPMaxConnections int
	// LogFormat is "text" or "json".
	LogFormat string
	// LogLevel is the minimum level logged.
	LogLevel slog.Level
	// HookTimeout is the default timeout of hooks and jobs.
	HookTimeout time.Duration
	// Hooks maps hook names (see HookNames) to the hook to run.
	Hooks map[lifecycle.HookName]Hook
	// Jobs are the scheduled jobs.
	Jobs []Job
	// FilesystemLocks are the directories to lock.
	FilesystemLocks []string
	// FilesystemLocksRequired holds the start-up until every filesystem
	// lock is held.
	FilesystemLocksRequired bool
	// Templates are the configuration templates to render.
	Templates []Template
	// WaitFor are the services that must have an active master first.
	WaitFor []string
	// WaitForTimeout bounds the wait for them.
	WaitForTimeout time.Duration
	// SuppressLogRegexp drops matching lines of the service's output; nil
	// when unset.
	SuppressLogRegexp *regexp.Regexp
	// SentryDSN is where errors are reported, "" when off. Secret.
	SentryDSN string
	// Backups is the backup destination and retention policy.
	Backups Backups
	// JobsLocation is the time zone of the jobs' schedules.
	JobsLocation *time.Location
}

// Etcd is how to reach etcd.
type Etcd struct {
	// Endpoints are the client URLs; empty when etcd is not configured.
	Endpoints []string
	// Prefix is the key prefix of every cluster.
	Prefix string
	// Username and Password authenticate; both secret.
	Username, Password string
	// CACert, Cert and Key are TLS file paths, "" when unused.
	CACert, Cert, Key string
	// DialTimeout bounds one connection attempt.
	DialTimeout time.Duration
	// ConnectTimeout bounds the retries of the first connection.
	ConnectTimeout time.Duration
}

// Hook is one hook from the YAML file.
type Hook struct {
	// Command is the argv to execute; a YAML string becomes
	// ["/bin/sh", "-c", string].
	Command []string
	// Timeout bounds one run.
	Timeout time.Duration
}

// Job is one scheduled job from the YAML file.
type Job struct {
	// Name identifies the job.
	Name string
	// Schedule is the cron spec, as written.
	Schedule string
	// Role is "master", "slave" or "any".
	Role string
	// Command is the argv to execute.
	Command []string
	// Timeout bounds one run.
	Timeout time.Duration
	// Overlap is "skip", "queue" or "replace".
	Overlap string
	// Jitter is the largest random delay added to each run.
	Jitter time.Duration
}

// Template is one configuration template from the YAML file.
type Template struct {
	// Source and Destination are file paths.
	Source, Destination string
	// Reload is the shell command run when the output changed; "" when
	// none.
	Reload string
}

// Policy returns the retention policy of the backups.
func (b Backups) Policy() retention.Policy {
	return retention.Policy{Last: b.Last, Hourly: b.Hours, Daily: b.Days, Weekly: b.Weeks, Monthly: b.Months, Yearly: b.Years, Location: b.Location}
}

// Backups is where backups go and how long they are kept.
type Backups struct {
	// Destination is the folder holding one sub-folder per backup name.
	Destination string
	// Last, Hours, Days, Weeks, Months and Years are the retention counts
	// (retention.Unlimited for all).
	Last, Hours, Days, Weeks, Months, Years int
	// Location is the time zone of the retention buckets.
	Location *time.Location
}

// Ranking returns the ranking settings as the backends take them:
// priority 0 as coordinator.NeverLead.
func (c *Config) Ranking() coordinator.Ranking {
	r := coordinator.Ranking{Priority: c.Priority, MaxLag: c.MaximumLag, FailoverWait: c.FailoverWait}
	if c.Priority == 0 {
		r.Priority = coordinator.NeverLead
	}
	return r
}

// UsesEtcd reports whether etcd is configured.
func (c *Config) UsesEtcd() bool { return len(c.Etcd.Endpoints) > 0 }

// AddFlags defines a flag for every setting that has one, and --config, on
// fs. Load reads them when they were set.
func AddFlags(fs *pflag.FlagSet) {
	fs.String("config", "", "YAML configuration file (env CCCTL_CONFIG)")
	for _, s := range Settings() {
		name := s.Flag()
		if name == "" {
			continue
		}
		usage := s.Help + " (env " + strings.Join(s.Env, ", ") + ")"
		if s.Kind == Bool {
			fs.String(name, "", usage)
			fs.Lookup(name).NoOptDefVal = "true"
			continue
		}
		fs.String(name, "", usage)
	}
}

// Errors is a list of configuration errors, one line each.
type Errors []error

// Error returns the errors one per line.
func (e Errors) Error() string {
	lines := make([]string, len(e))
	for i, err := range e {
		lines[i] = err.Error()
	}
	return strings.Join(lines, "\n")
}

// Unwrap returns the errors.
func (e Errors) Unwrap() []error { return e }

// ErrInvalid is wrapped by every error of Load.
// It is coordinator.ErrInvalidConfig: one error for a bad configuration,
// whichever part found it.
var ErrInvalid = coordinator.ErrInvalidConfig

type loader struct {
	v      *viper.Viper
	flags  *pflag.FlagSet
	file   string
	shown  string          // file as error messages show it
	inFile map[string]bool // dotted keys present in the file
	schema *fileSchema
	errs   Errors
}

func (l *loader) fail(format string, args ...any) {
	args = shortenQuoted(format, args)
	msg := oneLine(fmt.Sprintf(format, args...))
	l.errs = append(l.errs, &lineError{msg: ErrInvalid.Error() + ": " + msg})
}

// Load reads the configuration from flags (may be nil), the environment, the
// YAML file named by --config or CCCTL_CONFIG, and the defaults, with a
// fresh viper instance, and validates it. On error it returns Errors, one
// line per bad value; every one wraps ErrInvalid.
func Load(flags *pflag.FlagSet) (*Config, error) {
	l := &loader{v: viper.New(), flags: flags, inFile: map[string]bool{}}
	cfg := l.load()
	if n := len(l.errs); n > maxErrors {
		l.errs = append(l.errs[:maxErrors-1], &lineError{msg: fmt.Sprintf("%v: and %d more errors", ErrInvalid, n-maxErrors+1)})
	}
	if len(l.errs) > 0 {
		return nil, l.errs
	}
	return cfg, nil
}

func (l *loader) load() *Config {
	l.readFile()
	for _, s := range Settings() {
		if s.Key == KeyConfig {
			continue
		}
		if s.Default != "" {
			l.v.SetDefault(s.Key, s.Default)
		}
		if err := l.v.BindEnv(append([]string{s.Key}, s.Env...)...); err != nil {
			l.fail("%s: %v", s.Key, err)
		}
		if name := s.Flag(); name != "" && l.flags != nil {
			if f := l.flags.Lookup(name); f != nil {
				if err := l.v.BindPFlag(s.Key, f); err != nil {
					l.fail("--%s: %v", name, err)
				}
			}
		}
		if s.Secret {
			l.secretFile(s)
		}
	}
	c := &Config{File: l.file}
	l.etcd(c)
	c.Cluster.Environment = l.name(KeyEnvironment, "environment")
	c.Cluster.Service = l.name(KeyService, "service")
	c.InstanceID = l.str(KeyInstanceID)
	if c.InstanceID == "" {
		h, err := os.Hostname()
		if err != nil {
			l.fail("%s: no value and no host name to default to: %v", l.source(KeyInstanceID), err)
		}
		c.InstanceID = h
	}
	if c.InstanceID != "" {
		if err := coordinator.ValidateName("instance id", c.InstanceID); err != nil {
			l.fail("%s: %v", l.source(KeyInstanceID), err)
		}
	}
	c.AdvertiseAddress = l.str(KeyAdvertiseAddress)
	if c.AdvertiseAddress != "" && !validHost(c.AdvertiseAddress) {
		l.fail("%s: %q: want a host name or an IP address, such as db1.example.com or 10.0.0.5", l.source(KeyAdvertiseAddress), c.AdvertiseAddress)
	}
	c.TTL = l.durationIn(KeyTTL, MinTTL, MaxTTL)
	if c.TTL >= MinTTL && coordinator.CheckTTL(c.TTL) != nil {
		l.fail("%s: %q: want whole seconds (etcd leases count seconds)", l.source(KeyTTL), l.str(KeyTTL))
	}
	c.HistorySize = l.historySize()
	c.GracePeriod = l.duration(KeyGracePeriod, 0)
	c.LeadershipLostAction = lifecycle.LeadershipLostAction(l.oneOf(KeyLeadershipLostAction,
		string(lifecycle.LeadershipLostDemote), string(lifecycle.LeadershipLostRestart), string(lifecycle.LeadershipLostExit)))
	l.ranking(c)
	for _, p := range l.list(KeyPortsWhenActive) {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 65535 {
			l.fail("%s: %q: want TCP port numbers from 1 to 65535, comma-separated", l.source(KeyPortsWhenActive), p)
			continue
		}
		c.PortsWhenActive = append(c.PortsWhenActive, n)
	}
	c.TerminateWhenNoLongerActive = l.boolean(KeyTerminateWhenNoLongerActive)
	c.HTTPAddress = l.str(KeyHTTPAddress)
	if c.HTTPAddress != "" {
		host, port, err := net.SplitHostPort(c.HTTPAddress)
		if n, perr := strconv.Atoi(port); err != nil || perr != nil || n < 1 || n > 65535 {
			l.fail("%s: %q: want host:port or :port, with a port number from 1 to 65535", l.source(KeyHTTPAddress), c.HTTPAddress)
		} else if host != "" && !validHost(host) {
			l.fail("%s: %q: want a host name or an IP address before the port, such as 127.0.0.1:8008", l.source(KeyHTTPAddress), c.HTTPAddress)
		}
	}
	c.HTTPMaxConnections = l.httpMaxConnections()
	c.LogFormat = l.oneOf(KeyLogFormat, "text", "json")
	switch lv := l.oneOf(KeyLogLevel, "debug", "info", "warn", "error"); lv {
	case "debug":
		c.LogLevel = slog.LevelDebug
	case "warn":
		c.LogLevel = slog.LevelWarn
	case "error":
		c.LogLevel = slog.LevelError
	default:
		c.LogLevel = slog.LevelInfo
	}
	c.HookTimeout = l.duration(KeyHooksTimeout, 0)
	for _, s := range l.list(KeyWaitFor) {
		if err := coordinator.ValidateName("service", s); err != nil {
			l.fail("%s: %v", l.source(KeyWaitFor), err)
			continue
		}
		c.WaitFor = append(c.WaitFor, s)
	}
	c.WaitForTimeout = l.duration(KeyWaitForTimeout, 0)
	if re := l.str(KeySuppressLogRegexp); re != "" {
		r, err := regexp.Compile(re)
		if err != nil {
			l.fail("%s: want a regular expression (Go RE2 syntax): %v", l.source(KeySuppressLogRegexp), err)
		}
		c.SuppressLogRegexp = r
	}
	c.SentryDSN = l.str(KeySentryDSN)
	c.Backups = Backups{
		Destination: l.str(KeyBackupsDestination),
		Last:        l.count(KeyBackupsLast),
		Hours:       l.count(KeyBackupsHours),
		Days:        l.count(KeyBackupsDays),
		Weeks:       l.count(KeyBackupsWeeks),
		Months:      l.count(KeyBackupsMonths),
		Years:       l.count(KeyBackupsYears),
	}
	if c.Backups.Destination == "" {
		l.fail("%s: want a folder, not empty", l.source(KeyBackupsDestination))
	}
	tz := l.str(KeyBackupsTimeZone)
	loc, err := time.LoadLocation(tz)
	if err != nil || tz == "" || tz == "Local" {
		l.fail("%s: %q: want an IANA time zone name such as UTC or Europe/Paris", l.source(KeyBackupsTimeZone), tz)
	}
	c.Backups.Location = loc
	tz = l.str(KeyJobsTimeZone)
	loc, err = time.LoadLocation(tz)
	if err != nil || tz == "" || tz == "Local" {
		l.fail("%s: %q: want an IANA time zone name such as UTC or Europe/Paris", l.source(KeyJobsTimeZone), tz)
	}
	c.JobsLocation = loc
	l.structured(c)
	c.FilesystemLocksRequired = l.boolean(KeyFilesystemLocksRequired)
	if c.FilesystemLocksRequired && len(c.FilesystemLocks) == 0 {
		l.fail("%s: true needs filesystem_locks in the YAML file", l.source(KeyFilesystemLocksRequired))
	}
	return c
}

// readFile reads the YAML file, strictly, into viper and checks its keys.
func (l *loader) readFile() {
	path, name := "", ""
	if l.flags != nil {
		if f := l.flags.Lookup("config"); f != nil && f.Changed {
			path, name = f.Value.String(), "--config"
		}
	}
	if name == "" {
		if p, ok := os.LookupEnv("CCCTL_CONFIG"); ok && p != "" {
			path, name = p, "CCCTL_CONFIG"
		}
	}
	if path == "" {
		return
	}
	data, err := smallfile.Read(path, smallfile.DefaultLimit)
	if err != nil {
		l.fail("%s: want a readable YAML file of at most 1 MiB: %v", name, err)
		return
	}
	l.file = path
	l.shown = shortPath(path)
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var f fileSchema
	if err := dec.Decode(&f); err != nil && !errors.Is(err, io.EOF) {
		l.fail("%s", yamlError(l.shown, err))
		return
	}
	var second yaml.Node
	if err := dec.Decode(&second); err == nil {
		l.fail("%s: line %d: a second YAML document; want one document (remove the --- line and what follows, or merge the two)", l.shown, second.Line)
		return
	} else if !errors.Is(err, io.EOF) {
		l.fail("%s", yamlError(l.shown, err))
		return
	}
	var m map[string]any
	if err := yaml.Unmarshal(data, &m); err != nil {
		l.fail("%s", yamlError(l.shown, err))
		return
	}
	flatten("", m, l.inFile)
	l.v.SetConfigType("yaml")
	if err := l.v.ReadConfig(bytes.NewReader(data)); err != nil {
		l.fail("%s: want valid YAML: %v", l.shown, err)
		return
	}
	l.schema = &f
}

func flatten(prefix string, m map[string]any, out map[string]bool) {
	for k, v := range m {
		key := k
		if prefix != "" {
			key = prefix + "." + k
		}
		out[key] = true
		if sub, ok := v.(map[string]any); ok {
			flatten(key, sub, out)
		}
	}
}

var fieldNotFound = regexp.MustCompile(`^line (\d+): field (\S+) not found in type`)

// yamlError turns a yaml.v3 error into one line naming the file.
func yamlError(path string, err error) string {
	var te *yaml.TypeError
	if errors.As(err, &te) && len(te.Errors) > 0 {
		msg := te.Errors[0]
		if m := fieldNotFound.FindStringSubmatch(msg); m != nil {
			msg = fmt.Sprintf("line %s: unknown key %q; see the configuration reference for the known keys", m[1], m[2])
		} else {
			msg = strings.TrimPrefix(msg, "yaml: ")
		}
		if n := len(te.Errors) - 1; n > 0 {
			msg += fmt.Sprintf(" (and %d more)", n)
		}
		return path + ": " + msg
	}
	return path + ": want valid YAML: " + strings.TrimPrefix(err.Error(), "yaml: ")
}

// source names where the value of key came from, as the user wrote it.
func (l *loader) source(key string) string {
	s, ok := settingByKey(key)
	if !ok {
		return key
	}
	if name := s.Flag(); name != "" && l.flags != nil {
		if f := l.flags.Lookup(name); f != nil && f.Changed {
			return "--" + name
		}
	}
	for _, e := range s.Env {
		if v, ok := os.LookupEnv(e); ok && v != "" {
			return e
		}
		if s.Secret {
			if v, ok := os.LookupEnv(e + "_FILE"); ok && v != "" {
				return e + "_FILE"
			}
		}
	}
	if l.inFile[key] {
		return l.shown + ": " + key
	}
	return key + " (default)"
}

func settingByKey(key string) (Setting, bool) {
	for _, s := range Settings() {
		if s.Key == key {
			return s, true
		}
	}
	return Setting{}, false
}

// secretFile applies the docker-secrets convention: NAME_FILE names a file
// holding the value of NAME.
func (l *loader) secretFile(s Setting) {
	for _, e := range s.Env {
		path, ok := os.LookupEnv(e + "_FILE")
		if !ok || path == "" {
			continue
		}
		if v, ok := os.LookupEnv(e); ok && v != "" {
			l.fail("%s and %s_FILE: both set; want only one", e, e)
			return
		}
		data, err := smallfile.Read(path, smallfile.SecretLimit)
		if err != nil {
			l.fail("%s_FILE: want a readable file of at most 64 KiB holding %s: %v", e, e, err)
			return
		}
		l.v.Set(s.Key, strings.TrimRight(string(data), "\r\n"))
		return
	}
}

// raw returns the value of key as a string, or ok=false with an error
// recorded when it is not a scalar.
func (l *loader) raw(key string) (string, bool) {
	switch x := l.v.Get(key).(type) {
	case nil:
		return "", true
	case string:
		return strings.TrimSpace(x), true
	case []any, map[string]any:
		l.fail("%s: want a single value, not a list or a map", l.source(key))
		return "", false
	default:
		return fmt.Sprint(x), true
	}
}

func (l *loader) str(key string) string {
	s, _ := l.raw(key)
	return s
}

func (l *loader) name(key, what string) string {
	s := l.str(key)
	if err := coordinator.ValidateName(what, s); err != nil {
		l.fail("%s: %v", l.source(key), err)
	}
	return s
}

// duration parses the setting key: a Go duration ("10s", "1m30s") or a
// number of seconds, positive, at least min and at most MaxDuration.
func (l *loader) duration(key string, min time.Duration) time.Duration {
	return l.durationIn(key, min, MaxDuration)
}

// durationIn is duration with a maximum of its own.
func (l *loader) durationIn(key string, min, max time.Duration) time.Duration {
	s, ok := l.raw(key)
	if !ok {
		return 0
	}
	return l.parseDurationIn(l.source(key), s, min, max)
}

// parseDuration parses s, given as where: a Go duration ("10s", "1m30s") or
// a number of seconds, positive, at least min and at most MaxDuration.
func (l *loader) parseDuration(where, s string, min time.Duration) time.Duration {
	return l.parseDurationIn(where, s, min, MaxDuration)
}

func (l *loader) parseDurationIn(where, s string, min, max time.Duration) time.Duration {
	want := "want a duration such as 10s, 1m30s or a number of seconds, more than 0 and at most " + shortDuration(max)
	if min > 0 {
		want = "want a duration such as 10s, 1m30s or a number of seconds, from " + shortDuration(min) + " to " + shortDuration(max)
	}
	s = strings.TrimSpace(s)
	d, err := time.ParseDuration(s)
	if err != nil {
		n, nerr := strconv.ParseFloat(s, 64)
		switch {
		case math.IsNaN(n) && nerr == nil:
			l.fail("%s: %q: not a number; %s", where, s, want)
			return 0
		case nerr != nil && !errors.Is(nerr, strconv.ErrRange):
			if tooLarge(s) {
				l.fail("%s: %q: too large; %s", where, s, want)
			} else {
				l.fail("%s: %q: %s", where, s, want)
			}
			return 0
		case math.IsInf(n, 0) || math.Abs(n) > float64(max)/float64(time.Second):
			if n < 0 {
				l.fail("%s: %q: negative; %s", where, s, want)
			} else {
				l.fail("%s: %q: too large; %s", where, s, want)
			}
			return 0
		}
		d = time.Duration(n * float64(time.Second))
	}
	switch {
	case d > max:
		l.fail("%s: %q: too large; %s", where, s, want)
	case min > 0 && d < min:
		l.fail("%s: %q: want at least %s (and at most %s)", where, s, shortDuration(min), shortDuration(max))
	case d <= 0:
		l.fail("%s: %q: %s", where, s, want)
	}
	return d
}

// tooLarge reports whether s, which time.ParseDuration refused, looks like a
// duration whose only fault is its size.
func tooLarge(s string) bool {
	_, err := time.ParseDuration(s)
	return err != nil && strings.Contains(err.Error(), "invalid duration") && durationShape.MatchString(s)
}

var durationShape = regexp.MustCompile(`^[+]?([0-9]+(\.[0-9]*)?(ns|us|µs|ms|s|m|h))+$`)

// shortDuration writes d as a person would: 1h, not 1h0m0s.
func shortDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

func (l *loader) count(key string) int {
	s, ok := l.raw(key)
	if !ok {
		return 0
	}
	n, err := retention.ParseCount(s)
	if err != nil {
		l.fail("%s: %q: want a whole number, 0 or more, or unlimited", l.source(key), s)
		return 0
	}
	return n
}

// historySize reads the history size: 1 to coordinator.MaxHistorySize.
func (l *loader) historySize() int {
	s, _ := l.raw(KeyHistorySize)
	n, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil || n < 1 || n > coordinator.MaxHistorySize {
		l.fail("%s: %q: want a whole number from 1 to %d", l.source(KeyHistorySize), s, coordinator.MaxHistorySize)
		return coordinator.DefaultHistorySize
	}
	return n
}

// httpMaxConnections reads the HTTP server's bound: 1 to maxHTTPConnections.
func (l *loader) httpMaxConnections() int {
	s, _ := l.raw(KeyHTTPMaxConnections)
	n, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil || n < 1 || n > maxHTTPConnections {
		l.fail("%s: %q: want a whole number from 1 to %d", l.source(KeyHTTPMaxConnections), s, maxHTTPConnections)
		return 0
	}
	return n
}

// The bounds of the position command's interval and timeout.
const (
	MinPositionInterval = 100 * time.Millisecond
	MaxPositionInterval = time.Hour
)

// ranking reads the priority, the position command and its timing, the
// maximum lag and the failover wait; c.TTL must be read first.
func (l *loader) ranking(c *Config) {
	c.Priority = coordinator.DefaultPriority
	if s, ok := l.raw(KeyPriority); ok {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 || n > coordinator.MaxPriority {
			l.fail("%s: %q: want a whole number from 0 (never leads) to %d", l.source(KeyPriority), s, coordinator.MaxPriority)
		} else {
			c.Priority = n
		}
	}
	c.PositionCommand = l.str(KeyPositionCommand)
	if strings.ContainsRune(c.PositionCommand, 0) {
		l.fail("%s: want a shell command without NUL bytes", l.source(KeyPositionCommand))
	}
	c.PositionInterval = l.durationIn(KeyPositionInterval, MinPositionInterval, MaxPositionInterval)
	if t, _ := l.raw(KeyPositionTimeout); t != "" {
		max := c.TTL
		if max < MinPositionInterval {
			max = MinTTL // the TTL's own error is reported
		}
		c.PositionTimeout = l.durationIn(KeyPositionTimeout, MinPositionInterval, max)
	} else {
		c.PositionTimeout = c.PositionInterval
		if c.TTL > 0 && c.PositionTimeout > c.TTL {
			c.PositionTimeout = c.TTL
		}
	}
	if s, ok := l.raw(KeyMaximumLag); ok {
		lag, err := strconv.ParseInt(s, 10, 64)
		if err != nil || lag < 0 {
			l.fail("%s: %q: want a whole number, 0 (no limit) or more", l.source(KeyMaximumLag), s)
		} else {
			c.MaximumLag = lag
		}
	}
	if w, _ := l.raw(KeyFailoverWait); w != "" {
		c.FailoverWait = l.duration(KeyFailoverWait, 0)
		if c.FailoverWait > 0 && c.TTL > 0 && c.FailoverWait >= c.TTL {
			l.fail("%s: %q: want more than 0 and less than ttl (%s)", l.source(KeyFailoverWait), w, shortDuration(c.TTL))
		}
	} else if c.TTL > 0 {
		c.FailoverWait = coordinator.DefaultFailoverWait(c.TTL)
	}
}

// maxHTTPConnections is the largest bound of the HTTP server's connections.
const maxHTTPConnections = 1000000

// boolean accepts true/false, 1/0, yes/no, on/off in any case.
func (l *loader) boolean(key string) bool {
	s, ok := l.raw(key)
	if !ok {
		return false
	}
	switch strings.ToLower(s) {
	case "true", "1", "yes", "on", "y":
		return true
	case "false", "0", "no", "off", "n":
		return false
	}
	l.fail("%s: %q: want true or false (also 1/0, yes/no, on/off)", l.source(key), s)
	return false
}

func (l *loader) oneOf(key string, allowed ...string) string {
	s := strings.ToLower(l.str(key))
	for _, a := range allowed {
		if s == a {
			return s
		}
	}
	l.fail("%s: %q: want one of %s", l.source(key), s, strings.Join(allowed, ", "))
	return ""
}

// list reads a comma-separated string or a YAML list.
func (l *loader) list(key string) []string {
	var out []string
	switch x := l.v.Get(key).(type) {
	case nil:
	case []any:
		for _, e := range x {
			if s := strings.TrimSpace(fmt.Sprint(e)); s != "" {
				out = append(out, s)
			}
		}
	case []string:
		for _, e := range x {
			if s := strings.TrimSpace(e); s != "" {
				out = append(out, s)
			}
		}
	case map[string]any:
		l.fail("%s: want a list, not a map", l.source(key))
	default:
		for _, e := range strings.Split(fmt.Sprint(x), ",") {
			if s := strings.TrimSpace(e); s != "" {
				out = append(out, s)
			}
		}
	}
	return out
}

func (l *loader) etcd(c *Config) {
	e := &c.Etcd
	e.Prefix = l.str(KeyEtcdPrefix)
	if !strings.HasPrefix(e.Prefix, "/") || strings.HasSuffix(e.Prefix, "/") && e.Prefix != "/" {
		l.fail("%s: %q: want a key prefix starting with / and not ending with /, such as /ccctl", l.source(KeyEtcdPrefix), e.Prefix)
	} else if !printable(e.Prefix) {
		l.fail("%s: %q: want a key prefix of printable characters, without newlines or other control characters", l.source(KeyEtcdPrefix), e.Prefix)
	}
	e.Username = l.str(KeyEtcdUsername)
	e.Password = l.str(KeyEtcdPassword)
	if e.Password != "" && e.Username == "" {
		l.fail("%s: set without ETCD_USERNAME; want both or neither", l.source(KeyEtcdPassword))
	}
	e.CACert = l.str(KeyEtcdCACert)
	e.Cert = l.str(KeyEtcdCert)
	e.Key = l.str(KeyEtcdKey)
	if (e.Cert == "") != (e.Key == "") {
		l.fail("ETCD_CERT and ETCD_KEY: only one is set; want both or neither")
	}
	for _, k := range []string{KeyEtcdCACert, KeyEtcdCert, KeyEtcdKey} {
		if p := l.str(k); p != "" {
			if _, err := os.Stat(p); err != nil {
				l.fail("%s: want a readable file: %v", l.source(k), err)
			}
		}
	}
	e.DialTimeout = l.duration(KeyEtcdDialTimeout, 0)
	e.ConnectTimeout = l.duration(KeyEtcdConnectTimeout, 0)

	portStr := l.str(KeyEtcdPort)
	port, err := strconv.Atoi(portStr)
	if err != nil || port < 1 || port > 65535 {
		l.fail("%s: %q: want a TCP port number from 1 to 65535", l.source(KeyEtcdPort), portStr)
	}
	scheme := "http://"
	tlsFiles := ""
	switch {
	case e.CACert != "":
		tlsFiles = l.source(KeyEtcdCACert)
	case e.Cert != "":
		tlsFiles = l.source(KeyEtcdCert)
	case e.Key != "":
		tlsFiles = l.source(KeyEtcdKey)
	}
	if tlsFiles != "" {
		scheme = "https://"
	}
	// add checks one endpoint with the backend's rule and appends it.
	add := func(key, ep string) {
		if !strings.Contains(ep, "://") {
			ep = scheme + ep
		}
		u, err := etcd.ParseEndpoint(ep)
		if err != nil {
			l.fail("%s: %q: %v", l.source(key), ep, err)
			return
		}
		if tlsFiles != "" && strings.HasPrefix(u, "http://") {
			l.fail("%s: %q: TLS files were given (%s) for a plain http endpoint; want https:// endpoints, or no TLS files", l.source(key), ep, tlsFiles)
			return
		}
		e.Endpoints = append(e.Endpoints, u)
	}
	if eps := l.list(KeyEtcdEndpoints); len(eps) > 0 {
		for _, ep := range eps {
			add(KeyEtcdEndpoints, ep)
		}
		return
	}
	for _, h := range l.list(KeyEtcdHosts) {
		if strings.Contains(h, "/") {
			l.fail("%s: %q: want host names (use ETCD_ENDPOINTS for URLs)", l.source(KeyEtcdHosts), h)
			continue
		}
		if _, _, err := net.SplitHostPort(h); err != nil {
			if port < 1 || port > 65535 {
				continue // reported above
			}
			h = net.JoinHostPort(h, strconv.Itoa(port))
		}
		add(KeyEtcdHosts, h)
	}
}

// structured reads the YAML-only keys.
func (l *loader) structured(c *Config) {
	f := l.schema
	if f == nil {
		return
	}
	for name, node := range f.Hooks {
		if name == "timeout" {
			continue
		}
		if !isHookName(name) {
			l.fail("%s: hooks.%s: unknown hook; want one of %s", l.shown, name, strings.Join(HookNames(), ", "))
			continue
		}
		h, ok := l.hook("hooks."+name, node, c.HookTimeout)
		if ok {
			if c.Hooks == nil {
				c.Hooks = map[lifecycle.HookName]Hook{}
			}
			c.Hooks[lifecycle.HookName(name)] = h
		}
	}
	seen := map[string]bool{}
	for i, j := range f.Jobs {
		where := fmt.Sprintf("%s: jobs[%d]", l.shown, i)
		job := Job{Name: j.Name, Schedule: j.Schedule, Role: j.Role, Overlap: j.Overlap, Timeout: c.HookTimeout}
		if j.Name == "" {
			l.fail("%s.name: want a name", where)
		} else if seen[j.Name] {
			l.fail("%s.name: %q: want a name no other job has", where, j.Name)
		}
		seen[j.Name] = true
		if _, err := schedule.ParseSchedule(j.Schedule, c.JobsLocation); err != nil {
			l.fail("%s.schedule: %q: want 5 or 6 cron fields, @hourly-style names or @every <duration>: %v", where, j.Schedule, err)
		}
		if job.Role == "" {
			job.Role = "master"
		}
		if job.Role != "master" && job.Role != "slave" && job.Role != "any" {
			l.fail("%s.role: %q: want master, slave or any", where, j.Role)
		}
		if job.Overlap == "" {
			job.Overlap = "skip"
		}
		if job.Overlap != "skip" && job.Overlap != "queue" && job.Overlap != "replace" {
			l.fail("%s.overlap: %q: want skip, queue or replace", where, j.Overlap)
		}
		if j.Timeout != "" {
			job.Timeout = l.parseDuration(where+".timeout", j.Timeout, 0)
		}
		if j.Jitter != "" {
			job.Jitter = l.parseDuration(where+".jitter", j.Jitter, 0)
		}
		job.Command, _ = l.command(where+".command", j.Command)
		c.Jobs = append(c.Jobs, job)
	}
	for i, dir := range f.FilesystemLocks {
		if strings.TrimSpace(dir) == "" {
			l.fail("%s: filesystem_locks[%d]: want a directory, not empty", l.shown, i)
			continue
		}
		c.FilesystemLocks = append(c.FilesystemLocks, dir)
	}
	for i, t := range f.Templates {
		where := fmt.Sprintf("%s: templates[%d]", l.shown, i)
		if t.Source == "" || t.Destination == "" {
			l.fail("%s: want both source and destination", where)
		}
		tp := Template{Source: t.Source, Destination: t.Destination, Reload: t.Reload}
		c.Templates = append(c.Templates, tp)
	}
}

func isHookName(name string) bool {
	for _, n := range HookNames() {
		if n == name {
			return true
		}
	}
	return false
}

// command reads a string (run with /bin/sh -c) or a list (executed
// directly).
func (l *loader) command(where string, n yaml.Node) ([]string, bool) {
	switch n.Kind {
	case yaml.ScalarNode:
		if strings.TrimSpace(n.Value) == "" {
			break
		}
		return []string{"/bin/sh", "-c", n.Value}, true
	case yaml.SequenceNode:
		var argv []string
		if err := n.Decode(&argv); err != nil || len(argv) == 0 || argv[0] == "" {
			break
		}
		return argv, true
	}
	l.fail("%s: line %d: want a command: a string (run with /bin/sh -c) or a non-empty list of strings", where, n.Line)
	return nil, false
}

// hook reads a command, or a map {command, timeout}.
func (l *loader) hook(key string, n yaml.Node, timeout time.Duration) (Hook, bool) {
	where := l.shown + ": " + key
	if n.Kind != yaml.MappingNode {
		argv, ok := l.command(where, n)
		return Hook{Command: argv, Timeout: timeout}, ok
	}
	h := Hook{Timeout: timeout}
	ok := true
	var cmdNode *yaml.Node
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		switch k.Value {
		case "command":
			cmdNode = v
		case "timeout":
			h.Timeout = l.parseDuration(where+".timeout", v.Value, 0)
		default:
			l.fail("%s: line %d: unknown key %q; want command and timeout", where, k.Line, k.Value)
			ok = false
		}
	}
	if cmdNode == nil {
		if ok {
			l.fail("%s: line %d: want a command", where, n.Line)
		}
		return h, false
	}
	argv, cok := l.command(where+".command", *cmdNode)
	h.Command = argv
	return h, ok && cok
}
