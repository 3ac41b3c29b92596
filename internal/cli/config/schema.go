package config

import "go.yaml.in/yaml/v3"

// fileSchema is the shape of the YAML file. It is decoded with KnownFields,
// so that an unknown key is an error; scalar values are typed and checked
// later, from viper, like the same setting from any other source.
type fileSchema struct {
	Etcd *struct {
		Endpoints      any `yaml:"endpoints"`
		Hosts          any `yaml:"hosts"`
		Port           any `yaml:"port"`
		Prefix         any `yaml:"prefix"`
		Username       any `yaml:"username"`
		Password       any `yaml:"password"`
		CACert         any `yaml:"cacert"`
		Cert           any `yaml:"cert"`
		Key            any `yaml:"key"`
		DialTimeout    any `yaml:"dial_timeout"`
		ConnectTimeout any `yaml:"connect_timeout"`
	} `yaml:"etcd"`
	Environment                 any `yaml:"environment"`
	Service                     any `yaml:"service"`
	InstanceID                  any `yaml:"instance_id"`
	AdvertiseAddress            any `yaml:"advertise_address"`
	TTL                         any `yaml:"ttl"`
	HistorySize                 any `yaml:"history_size"`
	GracePeriod                 any `yaml:"grace_period"`
	LeadershipLostAction        any `yaml:"leadership_lost_action"`
	Priority                    any `yaml:"priority"`
	PositionCommand             any `yaml:"position_command"`
	PositionInterval            any `yaml:"position_interval"`
	PositionTimeout             any `yaml:"position_timeout"`
	MaximumLag                  any `yaml:"maximum_lag"`
	FailoverWait                any `yaml:"failover_wait"`
	PortsWhenActive             any `yaml:"ports_when_active"`
	TerminateWhenNoLongerActive any `yaml:"terminate_when_no_longer_active"`
	HTTP                        *struct {
		Address        any `yaml:"address"`
		MaxConnections any `yaml:"max_connections"`
	} `yaml:"http"`
	Log *struct {
		Format any `yaml:"format"`
		Level  any `yaml:"level"`
	} `yaml:"log"`
	Hooks             map[string]yaml.Node `yaml:"hooks"`
	WaitFor           any                  `yaml:"wait_for"`
	WaitForTimeout    any                  `yaml:"wait_for_timeout"`
	SuppressLogRegexp any                  `yaml:"suppress_log_regexp"`
	SentryDSN         any                  `yaml:"sentry_dsn"`
	JobsTimezone      any                  `yaml:"jobs_timezone"`
	Backups           *struct {
		DestinationFolder any `yaml:"destination_folder"`
		LastToKeep        any `yaml:"last_to_keep"`
		HoursToKeep       any `yaml:"hours_to_keep"`
		DaysToKeep        any `yaml:"days_to_keep"`
		WeeksToKeep       any `yaml:"weeks_to_keep"`
		MonthsToKeep      any `yaml:"months_to_keep"`
		YearsToKeep       any `yaml:"years_to_keep"`
		Timezone          any `yaml:"timezone"`
	} `yaml:"backups"`
	Jobs []struct {
		Name     string    `yaml:"name"`
		Schedule string    `yaml:"schedule"`
		Role     string    `yaml:"role"`
		Command  yaml.Node `yaml:"command"`
		Timeout  string    `yaml:"timeout"`
		Overlap  string    `yaml:"overlap"`
		Jitter   string    `yaml:"jitter"`
	} `yaml:"jobs"`
	FilesystemLocks         []string `yaml:"filesystem_locks"`
	FilesystemLocksRequired any      `yaml:"filesystem_locks_required"`
	Templates               []struct {
		Source      string `yaml:"source"`
		Destination string `yaml:"destination"`
		Reload      string `yaml:"reload"`
	} `yaml:"templates"`
}
