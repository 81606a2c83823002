//go:build race

package main

// raceEnabled tells TestMain to build the pincluster-ctl binary with the
// race detector too.
const raceEnabled = true
