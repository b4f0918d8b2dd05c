// Package datagen writes seeded, reproducible sample data into stores: the
// demo's dataset, the end-to-end tests' datasets and the benchmarks'.
// The same Spec and seed always produce the same keys and values.
package datagen
