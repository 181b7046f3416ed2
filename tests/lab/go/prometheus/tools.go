//go:build tools

// Pins Prometheus 3.16.0 (Go module tag v0.316.0) for the lab: promtool
// (check/test the monitoring/ rule files, check a real /metrics scrape) and
// prometheus (evaluates the alert rules against the status exporter in lab
// tests). Built by tests/lab/build-bins into .cache/lab/bin.
package tools

import (
	_ "github.com/prometheus/prometheus/cmd/prometheus"
	_ "github.com/prometheus/prometheus/cmd/promtool"
)
