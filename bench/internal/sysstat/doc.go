// Package sysstat reads the machine-wide figures the benchmark drivers
// share from /proc: the clock tick, CPU time of all CPUs, and the kernel's
// UDP receive-buffer drops.
package sysstat
