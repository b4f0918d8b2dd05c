// Package sourcetest is the contract every source keeps, as a test suite:
// a snapshot copies every key, a source stopped at any moment (a crash:
// what it published and never saw acknowledged may or may not be in the
// log) resumes from what it saved and loses nothing, and changes made
// while no source ran reach the log when it starts again.
//
// A source's package runs the suite from a test of its own, over fakes or
// a private server, with a Subject that says how to change the store and
// how to build the source. The suite checks what a sink would end with:
// it applies the published events to a model target (newer version wins,
// deletes leave tombstones, truncates sweep what is older) and compares
// the model with the store.
package sourcetest
