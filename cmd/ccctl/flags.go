package main

import (
	"strings"

	"github.com/spf13/pflag"

	"github.com/ccctl/ccctl/internal/cli/config"
)

// Which command has which setting's flag. The settings that pick the
// cluster and reach etcd are flags of every command (persistent flags of
// the root); the others are flags of the commands that read them only, so
// that ccctl leader --help does not list run's settings. The environment
// and the YAML file set every setting for every command, as before.

// persistentKeys are --config's companions: how to reach etcd, and the
// cluster's names.
func persistentKeys() []string {
	return []string{
		config.KeyEtcdEndpoints, config.KeyEtcdHosts, config.KeyEtcdPort, config.KeyEtcdPrefix,
		config.KeyEtcdCACert, config.KeyEtcdCert, config.KeyEtcdKey, config.KeyEtcdDialTimeout,
		config.KeyEnvironment, config.KeyService,
	}
}

// healthKeys are the flags of health: where the controller's HTTP server
// listens.
func healthKeys() []string { return []string{config.KeyHTTPAddress} }

// rankingKeys are the flags of status, switchover and failover: the
// maximum lag they rank the members with, as the members do.
func rankingKeys() []string { return []string{config.KeyMaximumLag} }

// backupKeys are the flags of backup and its subcommands: the backups'
// folder and policy, and what backup run needs to run a command and log.
func backupKeys() []string {
	return []string{
		config.KeyInstanceID, config.KeyGracePeriod, config.KeyLogFormat, config.KeyLogLevel,
		config.KeyBackupsDestination, config.KeyBackupsLast, config.KeyBackupsHours, config.KeyBackupsDays,
		config.KeyBackupsWeeks, config.KeyBackupsMonths, config.KeyBackupsYears, config.KeyBackupsTimeZone,
	}
}

// addPersistentFlags defines --config and the flags of persistentKeys.
func addPersistentFlags(fs *pflag.FlagSet) {
	fs.Var(&settingValue{kind: "file"}, "config", "YAML configuration file (env CCCTL_CONFIG)")
	addSettingFlags(fs, persistentKeys()...)
}

// addRunFlags defines the flag of every setting that is not persistent.
func addRunFlags(fs *pflag.FlagSet) {
	persistent := map[string]bool{}
	for _, k := range persistentKeys() {
		persistent[k] = true
	}
	var keys []string
	for _, s := range config.Settings() {
		if !persistent[s.Key] {
			keys = append(keys, s.Key)
		}
	}
	addSettingFlags(fs, keys...)
}

// addSettingFlags defines on fs the flags of the settings keys name (those
// that have a flag), with a usage line for a terminal: the setting's help
// without the Markdown quotes (pflag would read a quoted word as the
// value's name), its environment variables and its default. config.Load
// reads the flags that were set.
func addSettingFlags(fs *pflag.FlagSet, keys ...string) {
	want := map[string]bool{}
	for _, k := range keys {
		want[k] = true
	}
	for _, s := range config.Settings() {
		name := s.Flag()
		if name == "" || !want[s.Key] {
			continue
		}
		usage := strings.ReplaceAll(s.Help, "`", "") + " (env " + strings.Join(s.Env, ", ")
		if s.Default == "" && s.DefaultDoc != "" {
			usage += "; default: " + strings.ReplaceAll(s.DefaultDoc, "`", "")
		}
		usage += ")"
		v := &settingValue{kind: valueName(s.Kind)}
		if s.Kind == config.Bool {
			// An empty quoted name: the flag alone means true, and
			// pflag shows it as --name[=true].
			usage = "``" + usage
		}
		fs.Var(v, name, usage)
		f := fs.Lookup(name)
		f.DefValue = s.Default
		if s.Kind == config.Bool {
			f.NoOptDefVal = "true"
		}
	}
}

// valueName is the name help shows for a value of kind k. It must not be
// a type name viper converts on its own ("int", "bool"): config.Load reads
// and validates the text as the user wrote it.
func valueName(k config.Kind) string {
	switch k {
	case config.Int:
		return "N"
	case config.Duration:
		return "duration"
	case config.List:
		return "list"
	case config.Port:
		return "port"
	case config.Bool:
		return "boolean"
	}
	return "string"
}

// settingValue is the text of a setting given as a flag; config.Load
// parses and validates it.
type settingValue struct {
	s    string
	kind string
}

func (v *settingValue) String() string     { return v.s }
func (v *settingValue) Set(s string) error { v.s = s; return nil }
func (v *settingValue) Type() string       { return v.kind }
