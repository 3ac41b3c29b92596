// Package cli holds nothing itself; its sub-packages adapt the ccctl
// command to the library: config reads and validates the settings, and
// errreport, logfilter, render and waitfor carry the settings of the same
// names. Only cmd/ccctl imports them.
package cli
