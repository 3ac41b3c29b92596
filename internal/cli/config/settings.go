// Package config reads and validates the settings of ccctl: command-line
// flags, environment variables (the original docker-cluster-controller's
// names verbatim, and the CCCTL_ ones), an optional YAML file and defaults,
// in that order of precedence, with a fresh viper instance per call of Load.
//
// Settings lists every setting with its YAML key, its environment variables,
// its flag and its default; the README's configuration reference is checked
// against it by a test, so the list is the single source of truth.
//
// Load either returns a complete, validated Config or an error made of one
// line per bad value, naming the setting as the user gave it (flag,
// environment variable or YAML key) and what is expected. It does not check
// what can only be known at run time (that etcd answers, that a hook's
// command exists). Secret values are never part of an error message.
package config

import (
	"strings"

	"github.com/ccctl/ccctl/lifecycle"
)

// Kind is the type of a setting's value.
type Kind int

// The kinds of settings.
const (
	String Kind = iota
	Int
	Bool
	Duration
	List // comma-separated in the environment, a list in YAML
	Port
)

// Setting describes one setting.
type Setting struct {
	// Key is the YAML key, dotted for nested keys (etcd.prefix).
	Key string
	// Env lists the environment variables that set it, the preferred one
	// first. The original's names come before the CCCTL_ ones.
	Env []string
	// Kind is the type of its value.
	Kind Kind
	// Default is the value used when nothing sets it, written as a user
	// would write it; empty means unset.
	Default string
	// DefaultDoc describes the default when it is computed at run time
	// (Default is then empty).
	DefaultDoc string
	// Secret settings also accept <NAME>_FILE and are never logged.
	Secret bool
	// Shared secrets are passed on to the service and the hooks; the others
	// (and their <NAME>_FILE) are removed from their environment.
	Shared bool
	// NoFlag is set for settings that have no command-line flag (secrets,
	// and the YAML file's own path, which has --config).
	NoFlag bool
	// Help is a one-line description.
	Help string
}

// Flag returns the name of the setting's command-line flag ("" when it has
// none): the YAML key with dots and underscores turned into dashes.
func (s Setting) Flag() string {
	if s.NoFlag {
		return ""
	}
	return strings.NewReplacer(".", "-", "_", "-").Replace(s.Key)
}

// DocDefault returns the default as the configuration reference shows it.
func (s Setting) DocDefault() string {
	if s.Default != "" {
		return "`" + s.Default + "`"
	}
	if s.DefaultDoc != "" {
		return s.DefaultDoc
	}
	return "unset"
}

// Keys of the settings, for Config's readers and tests.
const (
	KeyConfig                      = "config"
	KeyEtcdEndpoints               = "etcd.endpoints"
	KeyEtcdHosts                   = "etcd.hosts"
	KeyEtcdPort                    = "etcd.port"
	KeyEtcdPrefix                  = "etcd.prefix"
	KeyEtcdUsername                = "etcd.username"
	KeyEtcdPassword                = "etcd.password"
	KeyEtcdCACert                  = "etcd.cacert"
	KeyEtcdCert                    = "etcd.cert"
	KeyEtcdKey                     = "etcd.key"
	KeyEtcdDialTimeout             = "etcd.dial_timeout"
	KeyEtcdConnectTimeout          = "etcd.connect_timeout"
	KeyEnvironment                 = "environment"
	KeyService                     = "service"
	KeyInstanceID                  = "instance_id"
	KeyAdvertiseAddress            = "advertise_address"
	KeyTTL                         = "ttl"
	KeyHistorySize                 = "history_size"
	KeyGracePeriod                 = "grace_period"
	KeyLeadershipLostAction        = "leadership_lost_action"
	KeyPriority                    = "priority"
	KeyPositionCommand             = "position_command"
	KeyPositionInterval            = "position_interval"
	KeyPositionTimeout             = "position_timeout"
	KeyMaximumLag                  = "maximum_lag"
	KeyFailoverWait                = "failover_wait"
	KeyPortsWhenActive             = "ports_when_active"
	KeyTerminateWhenNoLongerActive = "terminate_when_no_longer_active"
	KeyHTTPAddress                 = "http.address"
	KeyHTTPMaxConnections          = "http.max_connections"
	KeyLogFormat                   = "log.format"
	KeyLogLevel                    = "log.level"
	KeyHooksTimeout                = "hooks.timeout"
	KeyWaitFor                     = "wait_for"
	KeyWaitForTimeout              = "wait_for_timeout"
	KeyFilesystemLocksRequired     = "filesystem_locks_required"
	KeySuppressLogRegexp           = "suppress_log_regexp"
	KeySentryDSN                   = "sentry_dsn"
	KeyBackupsDestination          = "backups.destination_folder"
	KeyBackupsLast                 = "backups.last_to_keep"
	KeyBackupsHours                = "backups.hours_to_keep"
	KeyBackupsDays                 = "backups.days_to_keep"
	KeyBackupsWeeks                = "backups.weeks_to_keep"
	KeyBackupsMonths               = "backups.months_to_keep"
	KeyBackupsYears                = "backups.years_to_keep"
	KeyBackupsTimeZone             = "backups.timezone"
	KeyJobsTimeZone                = "jobs_timezone"
)

// Settings returns every setting that a flag, an environment variable or a
// scalar YAML key can set, in the order of the configuration reference.
func Settings() []Setting {
	return []Setting{
		{Key: KeyConfig, Env: []string{"CCCTL_CONFIG"}, NoFlag: true, DefaultDoc: "none", Help: "path of the YAML file (flag `--config`)"},
		{Key: KeyEtcdEndpoints, Env: []string{"ETCD_ENDPOINTS", "CCCTL_ETCD_ENDPOINTS"}, Kind: List, Help: "etcd endpoints, comma-separated, e.g. `https://etcd1:2379,https://etcd2:2379`; wins over hosts and port"},
		{Key: KeyEtcdHosts, Env: []string{"ETCD_HOSTS", "ETCD_HOST"}, Kind: List, Help: "etcd host names, comma-separated (both of the original's names work); with neither endpoints nor hosts, the memory backend is used"},
		{Key: KeyEtcdPort, Env: []string{"ETCD_PORT"}, Kind: Port, Default: "2379", Help: "etcd client port used with the hosts"},
		{Key: KeyEtcdPrefix, Env: []string{"CCCTL_PREFIX"}, Default: "/ccctl", Help: "key prefix under which every cluster lives"},
		{Key: KeyEtcdUsername, Env: []string{"ETCD_USERNAME"}, Secret: true, NoFlag: true, Help: "etcd user name"},
		{Key: KeyEtcdPassword, Env: []string{"ETCD_PASSWORD"}, Secret: true, NoFlag: true, Help: "etcd password"},
		{Key: KeyEtcdCACert, Env: []string{"ETCD_CACERT"}, Help: "CA certificate file to verify etcd's certificate"},
		{Key: KeyEtcdCert, Env: []string{"ETCD_CERT"}, Help: "client certificate file"},
		{Key: KeyEtcdKey, Env: []string{"ETCD_KEY"}, Help: "client key file"},
		{Key: KeyEtcdDialTimeout, Env: []string{"CCCTL_ETCD_DIAL_TIMEOUT"}, Kind: Duration, Default: "5s", Help: "timeout of one connection attempt to etcd"},
		{Key: KeyEtcdConnectTimeout, Env: []string{"CCCTL_ETCD_CONNECT_TIMEOUT"}, Kind: Duration, Default: "60s", Help: "how long `run` retries to reach etcd before it exits with code 3"},
		{Key: KeyEnvironment, Env: []string{"ENVIRONMENT"}, Default: "default", Help: "the cluster's environment name"},
		{Key: KeyService, Env: []string{"SERVICE"}, Default: "default", Help: "the cluster's service name"},
		{Key: KeyInstanceID, Env: []string{"CCCTL_INSTANCE_ID"}, DefaultDoc: "the host name", Help: "this member's id"},
		{Key: KeyAdvertiseAddress, Env: []string{"CCCTL_ADVERTISE_ADDRESS"}, DefaultDoc: "the local address of the connection to etcd", Help: "the address other members use to reach this one"},
		{Key: KeyTTL, Env: []string{"CCCTL_TTL"}, Kind: Duration, Default: "10s", Help: "session lease TTL, from 2s to 1h; a crashed master is replaced within about this time"},
		{Key: KeyHistorySize, Env: []string{"CCCTL_HISTORY_SIZE"}, Kind: Int, Default: "100", Help: "master terms the cluster's history keeps (`ccctl history`, `/history`), 1 to 100000; trimmed by each new master"},
		{Key: KeyGracePeriod, Env: []string{"CCCTL_GRACE_PERIOD"}, Kind: Duration, Default: "8s", Help: "time between SIGTERM and SIGKILL when the service is stopped"},
		{Key: KeyLeadershipLostAction, Env: []string{"CCCTL_LEADERSHIP_LOST_ACTION"}, Default: "demote", Help: "what a master does when its leadership is lost: `demote` (run transition_master_to_slave), `restart` (restart the service) or `exit` (stop, exit code 5)"},
		{Key: KeyPriority, Env: []string{"CCCTL_PRIORITY"}, Kind: Int, Default: "1", Help: "this member's priority when the master is gone, 0 to 1048576: among members equally caught up the higher one leads; 0 never leads (unless forced with `ccctl failover --to ID --force`)"},
		{Key: KeyPositionCommand, Env: []string{"CCCTL_POSITION_COMMAND"}, Help: "shell command (`/bin/sh -c`) that prints this member's replication position, one non-negative integer; run every `position_interval` and at once when the master is gone, published in the member's record and given to hooks as `CC_POSITION`; a failure publishes no position"},
		{Key: KeyPositionInterval, Env: []string{"CCCTL_POSITION_INTERVAL"}, Kind: Duration, Default: "1s", Help: "how often `position_command` runs, from 100ms to 1h"},
		{Key: KeyPositionTimeout, Env: []string{"CCCTL_POSITION_TIMEOUT"}, Kind: Duration, DefaultDoc: "`position_interval`, at most `ttl`", Help: "how long one run of `position_command` may take, from 100ms to `ttl`; then its process group is killed and the position is unknown"},
		{Key: KeyMaximumLag, Env: []string{"CCCTL_MAXIMUM_LAG"}, Kind: Int, Default: "0", Help: "a member behind the highest known position by more than this does not take over when the master crashes, nor is it `ccctl failover`'s target without `--force` (0: no limit)"},
		{Key: KeyFailoverWait, Env: []string{"CCCTL_FAILOVER_WAIT"}, Kind: Duration, DefaultDoc: "`ttl` / 4", Help: "how long the other eligible members wait for the best candidate to take over when the master is gone, before they try; less than `ttl`"},
		{Key: KeyPortsWhenActive, Env: []string{"PORTS_WHEN_ACTIVE"}, Kind: List, Help: "TCP ports that must accept connections before the member is `active`, e.g. `80,443`"},
		{Key: KeyTerminateWhenNoLongerActive, Env: []string{"TERMINATE_WHEN_NO_LONGER_ACTIVE"}, Kind: Bool, Default: "false", Help: "stop the container when an active service stops answering on its ports (true/false, 1/0, yes/no, on/off)"},
		{Key: KeyHTTPAddress, Env: []string{"CCCTL_HTTP_ADDR"}, DefaultDoc: "off", Help: "address of the HTTP server (`/health`, `/master`, `/slave`, `/status`, `/metrics`), e.g. `:8008`; also where `ccctl health` asks"},
		{Key: KeyHTTPMaxConnections, Env: []string{"CCCTL_HTTP_MAX_CONNECTIONS"}, Kind: Int, Default: "512", Help: "connections the HTTP server holds open at most, 1 to 1000000; when reached, a new connection replaces the oldest idle one, so `/health` keeps answering"},
		{Key: KeyLogFormat, Env: []string{"CCCTL_LOG_FORMAT"}, Default: "text", Help: "log format: `text` or `json`"},
		{Key: KeyLogLevel, Env: []string{"CCCTL_LOG_LEVEL"}, Default: "info", Help: "log level: `debug`, `info`, `warn` or `error`"},
		{Key: KeyHooksTimeout, Env: []string{"CCCTL_HOOK_TIMEOUT"}, Kind: Duration, Default: "60s", Help: "default timeout of a hook"},
		{Key: KeyWaitFor, Env: []string{"WAIT_FOR_SERVICES"}, Kind: List, Help: "services of the same environment that must have an active master before this member starts"},
		{Key: KeyWaitForTimeout, Env: []string{"CCCTL_WAIT_FOR_TIMEOUT"}, Kind: Duration, Default: "60s", Help: "how long to wait for them before exiting with code 3"},
		{Key: KeyFilesystemLocksRequired, Env: []string{"CCCTL_FILESYSTEM_LOCKS_REQUIRED"}, Kind: Bool, Default: "false", Help: "hold the start-up until every lock of `filesystem_locks` is this member's, taken one after the other in their order (false: the service starts at once, holding what it could take)"},
		{Key: KeySuppressLogRegexp, Env: []string{"SUPPRESS_LOG_REGEXP"}, Help: "the service's output lines matching this regular expression are dropped"},
		{Key: KeySentryDSN, Env: []string{"SENTRY_DSN"}, Secret: true, Shared: true, NoFlag: true, Help: "report the controller's errors to Sentry"},
		{Key: KeyBackupsDestination, Env: []string{"BACKUP_DESTINATION_FOLDER"}, Default: "backup", Help: "folder under which backups are stored, one sub-folder per backup name"},
		{Key: KeyBackupsLast, Env: []string{"CCCTL_BACKUP_LAST_TO_KEEP"}, Kind: Int, Default: "0", Help: "keep the newest N backups (`unlimited` or -1: all; likewise for the counts below)"},
		{Key: KeyBackupsHours, Env: []string{"BACKUP_HOURS_TO_KEEP"}, Kind: Int, Default: "24", Help: "keep the newest backup of each of the last N hours"},
		{Key: KeyBackupsDays, Env: []string{"BACKUP_DAYS_TO_KEEP"}, Kind: Int, Default: "14", Help: "keep the newest backup of each of the last N days"},
		{Key: KeyBackupsWeeks, Env: []string{"BACKUP_WEEKS_TO_KEEP"}, Kind: Int, Default: "4", Help: "keep the newest backup of each of the last N ISO weeks"},
		{Key: KeyBackupsMonths, Env: []string{"BACKUP_MONTHS_TO_KEEP"}, Kind: Int, Default: "3", Help: "keep the newest backup of each of the last N months"},
		{Key: KeyBackupsYears, Env: []string{"CCCTL_BACKUP_YEARS_TO_KEEP"}, Kind: Int, Default: "0", Help: "keep the newest backup of each of the last N years"},
		{Key: KeyBackupsTimeZone, Env: []string{"CCCTL_BACKUP_TIMEZONE"}, Default: "UTC", Help: "time zone of the retention buckets (an IANA name)"},
		{Key: KeyJobsTimeZone, Env: []string{"CCCTL_JOBS_TIMEZONE"}, Default: "UTC", Help: "time zone of the jobs' cron schedules (an IANA name); across DST changes jobs follow ISC cron"},
	}
}

// YAMLKey describes a YAML key that holds a structure rather than a scalar;
// these have no environment variable and no flag.
type YAMLKey struct {
	// Key is the YAML key; <name> stands for a hook name.
	Key string
	// DefaultDoc describes the default.
	DefaultDoc string
	// Help is a one-line description.
	Help string
}

// YAMLKeys returns the structured keys of the YAML file, in the order of the
// configuration reference.
func YAMLKeys() []YAMLKey {
	return []YAMLKey{
		{Key: "hooks.<name>", DefaultDoc: "none", Help: "a hook: a string runs with `/bin/sh -c`, a list is executed directly, or `{command, timeout}`; `<name>` is one of " + strings.Join(quoted(HookNames()), ", ")},
		{Key: "jobs", DefaultDoc: "none", Help: "scheduled jobs: a list of `{name, schedule, role, command, timeout, overlap, jitter}`; `role` is `master`, `slave` or `any`, `overlap` is `skip`, `queue` or `replace`; `schedule` takes 5 or 6 cron fields, `@hourly`-style names and `@every <duration>`; `role` defaults to `master`, `timeout` to the hook timeout, `overlap` to `skip`; `jitter` (a duration, default 0) delays each run by a random amount up to it"},
		{Key: "filesystem_locks", DefaultDoc: "none", Help: "directories this member locks (`flock(2)` on `DIR/.ccctl.lock`, holding the member's id, host and pid) while it runs; a lock another member holds is taken within milliseconds of its release or its holder's death; a member that holds none still starts its service unless `filesystem_locks_required`; `/status` shows which are held"},
		{Key: "templates", DefaultDoc: "none", Help: "a list of `{source, destination, reload}`: Go `text/template` files rendered before the init hook and on every role or master change; `reload` (a shell command) runs when the output changed"},
	}
}

func quoted(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = "`" + s + "`"
	}
	return out
}

// HookNames returns the names a hook can have: the original's method names,
// as lifecycle defines them.
func HookNames() []string {
	out := make([]string, len(lifecycle.HookNames))
	for i, n := range lifecycle.HookNames {
		out[i] = string(n)
	}
	return out
}

// StrippedEnv returns the environment variables that hold ccctl's own
// secrets: every secret setting's variables that is not Shared, and their
// <NAME>_FILE forms. `ccctl run` removes them from its environment once the
// configuration is read, so that the service, the hooks, the jobs and every
// other command it starts do not inherit them.
func StrippedEnv() []string {
	var out []string
	for _, s := range Settings() {
		if !s.Secret || s.Shared {
			continue
		}
		for _, e := range s.Env {
			out = append(out, e, e+"_FILE")
		}
	}
	return out
}
