// Package reliability holds the end-to-end tests that prove the promises of
// the design's "Semantics users rely on" section (docs/guarantees.md maps
// each promise to its test): broker faults survived with nothing
// acknowledged lost, clean shutdown on SIGTERM and redelivery after
// SIGKILL, hostile input dead-lettered with provenance, flat resources
// under a soak, and secrets kept out of logs. The package has no API; its
// tests run real mosquitto, in-process kfake and the aimdb-flow binary.
package reliability
