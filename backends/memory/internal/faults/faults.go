// Package faults carries the memory backend's fault injection from package
// memory to package memorytest, so that it is no part of the production
// type: package memory sets the functions when it is loaded.
package faults

// Crash and Partition take a *memory.Coordinator (any: this package cannot
// import memory, which imports it).
var (
	Crash     func(c any)
	Partition func(c any, cut bool)
)
