// Package profile writes the CPU and peak-heap profiles a run asks for
// (the hidden --cpu-profile and --heap-profile flags, which the
// benchmarks set through CUTOVER_BENCH_CPU_PROFILE), so that an
// optimisation starts from a measurement.
package profile
