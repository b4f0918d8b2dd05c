// Package pipelinetest holds fakes of the stage contracts in package
// pipeline, for the unit tests of sources and sinks.
package pipelinetest
