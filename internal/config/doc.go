// Package config is one pipeline's configuration, the same for every
// command: the YAML schema (Config), every default (Default), the flag
// that sets each key (BindFlags), reading a file with ${VAR} references
// and unknown keys refused (Load), and the rules a configuration must
// meet (Rules, run by Validate), which the reference documents key by
// key.
//
// Apply puts the layers together in their order: defaults, then the
// --config file, then the flags given on the command line. Where a
// setting is a sink's own (a mapping rule, an item format), the rule
// asks that sink to check it, so a configuration is refused for the
// reasons the sink would refuse it. Building sources and sinks from a
// Config is the binary's wiring, not this package's.
package config
